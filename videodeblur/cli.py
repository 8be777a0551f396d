"""Command line: parse, load the config, call the library, map errors to exit codes.

    videodeblur run INPUT -o OUTPUT [--config FILE] [--set key=value ...] [-y]
    videodeblur preview INPUT (--frame N | --time T | --frames A:B[:STEP] | --sheet K) -o OUT.png
                        [--mode split|side|diff|restored] [--crop X,Y,W,H] [--sweep KEY=FROM:TO:STEP]
                        [--no-label] [--upright] [-y] [--config FILE] [--set ...]
    videodeblur estimate INPUT -o TRACK.csv [--plot TRACK.png] [--config FILE] [--set ...] [-y]
    videodeblur tune INPUT [--config FILE] [--save FILE.toml] [--port N] [--open] [--set ...]
    videodeblur config show [INPUT] [--config FILE] [--set key=value ...]
    videodeblur config list | config init NAME -o FILE.toml [-y]

Exit codes (see videodeblur.errors): 0 success, 1 internal error, 2 usage or config,
3 input, 4 output, 5 processing, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from videodeblur.errors import ConfigError, Interrupted, InvalidParameterError, VideoDeblurError
from videodeblur.registry import PREVIEW_MODES

EXIT_INTERNAL = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code for usage errors is 2, as ours
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"videodeblur: error: {message}\n")


def _add_config_options(command, restoring: bool = True) -> None:
    command.add_argument("--config", "-c", metavar="FILE", help="TOML config file, or the name of a shipped one "
                         "(videodeblur config list)")
    command.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                         help="override one config key, e.g. --set psf.radius=4.5 (repeatable)")
    if restoring:
        command.add_argument("--strength", metavar="S", help="how much of the restoration to apply, from 0 (the "
                             "input) to 1 (all of it, the default); the same as --set deconvolution.strength=S")


def _add_progress_options(command) -> None:
    progress = command.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show the progress bar (default: only on a terminal)")
    progress.add_argument("--quiet", "-q", dest="progress", action="store_false", help="no progress bar")


def _add_run(commands) -> None:
    """``run``: restore one file, or several into a folder."""
    run = commands.add_parser("run", help="restore a video file")
    run.add_argument("input", metavar="INPUT", nargs="+",
                     help="the blurred video (never modified); several files or a folder restore each of them "
                          "into the folder -o OUTDIR/")
    run.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                     help="the restored video to write, or with several inputs a folder (OUTDIR/)")
    run.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    _add_progress_options(run)
    _add_config_options(run)


def _add_preview(commands) -> None:
    """``preview``: before/after PNGs of chosen frames."""
    preview = commands.add_parser("preview", help="write before/after PNGs of chosen frames")
    preview.add_argument("input", metavar="INPUT", help="the video")
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--frame", type=int, metavar="N", help="frame number (from 0)")
    which.add_argument("--time", type=float, metavar="SECONDS", help="the frame on screen at this time")
    which.add_argument("--frames", metavar="A:B[:STEP]", help="frames A to B-1; one PNG each, numbered by frame")
    which.add_argument("--sheet", type=int, metavar="K", help="contact sheet of K frames spread over the clip")
    preview.add_argument("-o", "--output", required=True, metavar="OUT.png",
                         help="PNG to write; with --frames the frame number is added to the name")
    preview.add_argument("--mode", choices=tuple(PREVIEW_MODES), default="split",
                         help="; ".join(f"{mode}: {text}" for mode, text in PREVIEW_MODES.items()))
    preview.add_argument("--crop", metavar="X,Y,W,H", help="show only this rectangle (pixels)")
    preview.add_argument("--sweep", metavar="KEY=FROM:TO:STEP",
                         help="with --frame or --time: the frame restored with each value of one key, side by "
                              "side and labelled, e.g. psf.radius=2:4:0.5 or psf.radius=2,3,4 (the --crop region, "
                              "or the frame's centre)")
    preview.add_argument("--no-label", dest="label", action="store_false", help="no text on the images")
    preview.add_argument("--upright", action="store_true",
                         help="turn the images as a player shows a clip with a rotation tag (--crop and psf.angle "
                              "stay in the stored orientation)")
    preview.add_argument("-y", "--overwrite", action="store_true", help="replace existing PNG files")
    _add_config_options(preview)


def _add_estimate(commands) -> None:
    """``estimate``: the blur of every frame as CSV."""
    estimate = commands.add_parser("estimate", help="find the blur of every frame and write it as CSV")
    estimate.add_argument("input", metavar="INPUT", help="the video (never modified)")
    estimate.add_argument("-o", "--output", required=True, metavar="TRACK.csv",
                          help="CSV to write: one row per decoded frame, raw and smoothed parameters")
    estimate.add_argument("--plot", metavar="TRACK.png", help="also plot the track (needs videodeblur[plot])")
    estimate.add_argument("-y", "--overwrite", action="store_true", help="replace existing output files")
    _add_progress_options(estimate)
    _add_config_options(estimate)


def _add_tune(commands) -> None:
    """``tune``: the local tuning page."""
    tune = commands.add_parser("tune", help="tune the settings by eye on a local page in the browser")
    tune.add_argument("input", metavar="INPUT", help="the video (never modified)")
    tune.add_argument("--save", metavar="FILE.toml", help="where the page's 'Save config' writes")
    tune.add_argument("--port", type=int, default=0, metavar="N", help="port on 127.0.0.1 (default: a free one)")
    tune.add_argument("--open", action="store_true", help="open the page in the default browser")
    _add_config_options(tune)


def _add_config(commands) -> None:
    """``config show | list | init``."""
    config = commands.add_parser("config", help="inspect configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION",
                                            parser_class=_Parser)
    show = config_commands.add_parser("show", help="print the effective config as TOML")
    show.add_argument("input", metavar="INPUT", nargs="?",
                      help="also say what the config means for this video (where its frames are restored)")
    _add_config_options(show)
    config_commands.add_parser("list", help="list the shipped starting configs")
    init = config_commands.add_parser("init", help="write a shipped config to a file to start from")
    init.add_argument("name", metavar="NAME", help="a shipped config (videodeblur config list)")
    init.add_argument("-o", "--output", required=True, metavar="FILE.toml", help="the file to write")
    init.add_argument("-y", "--overwrite", action="store_true", help="replace FILE.toml if it exists")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="videodeblur", description="Restore blurred and out-of-focus video.")
    from videodeblur import __version__

    parser.add_argument("--version", action="version", version=f"videodeblur {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    for add in (_add_run, _add_preview, _add_estimate, _add_tune, _add_config):
        add(commands)
    return parser


def _overrides(args) -> list[str]:
    """The --set overrides, then --strength's."""
    overrides = list(args.overrides)
    if getattr(args, "strength", None) is not None:
        overrides.append(f"deconvolution.strength={args.strength}")
    return overrides


def _load(args):
    from videodeblur.config import load_config

    return load_config(args.config, _overrides(args))


#: What a folder given as input contributes: its video files (not those in subfolders).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".mxf", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg",
                  ".mpeg", ".wmv", ".flv", ".3gp", ".y4m")


def _command_run(args) -> int:
    config = _load(args)
    inputs, output = args.input, args.output
    batch = (len(inputs) > 1 or os.path.isdir(inputs[0]) or output.endswith(("/", os.sep))
             or os.path.isdir(output))
    if not batch:
        _run_one(inputs[0], output, config, args)
        return 0
    return _run_batch(_batch_inputs(inputs), output, config, args)


def _run_one(input_path, output_path, config, args) -> None:
    from videodeblur.io.paths import check_paths
    from videodeblur.pipeline import deblur_file

    check_paths(input_path, output_path, overwrite=args.overwrite, overwrite_hint="-y")
    report = deblur_file(input_path, output_path, config, overwrite=args.overwrite, progress=args.progress)
    for note in report.notes:
        print(f"videodeblur: note: input '{input_path}': {note}", file=sys.stderr)
    details = f" in {report.light}" if report.light else ""
    if report.point_lights:
        details += (f", {report.point_lights} point lights kept as points (if they are specks of texture, as in "
                    f"animation: deconvolution.point_lights = false)")
    if report.clipped_frames:
        details += f", clipped highlights completed on {report.clipped_frames} frames"
    if report.held_back:
        details += (f", {report.held_back} held back to a smaller kernel (the frame showed less blur than the "
                    f"kernel given: try a smaller one)")
    if report.grown:
        details += (f", {report.grown} restored with a larger kernel (the frame showed more blur than the "
                    f"kernel given: try a larger one)")
    if report.segments:
        details += f", in {report.segments} segments"
        if report.segments_reused:
            details += f" ({report.segments_reused} finished by an earlier run)"
    print(f"wrote {report.output}: {report.frames} frames restored{details}, {report.packets_copied} packets copied",
          file=sys.stderr)
    warning = _loss_warning(input_path, report)
    if warning:
        print(warning, file=sys.stderr)


def _batch_inputs(inputs: list[str]) -> list[str]:
    """The files to restore: each file given, and the video files of each folder given (sorted)."""
    from pathlib import Path

    found = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and p.suffix.lower() in VIDEO_SUFFIXES)
            if not files:
                raise InvalidParameterError(f"input folder '{path}' holds no video files "
                                            f"({', '.join(VIDEO_SUFFIXES[:6])}, ...)")
            found += [str(p) for p in files]
        else:
            found.append(name)
    return found


def _run_batch(inputs: list[str], output_dir: str, config, args) -> int:
    """Restore each input into ``output_dir`` under its own name; one line per file.

    A file that fails is reported and the rest are done; the exit status is 0 only when all
    succeeded, otherwise that of the first failure.
    """
    from pathlib import Path

    from videodeblur.errors import OutputError
    from videodeblur.io.paths import REFUSED_CONTAINERS

    folder = Path(output_dir)
    if not folder.is_dir():
        if not folder.parent.is_dir():
            raise OutputError(f"output folder '{folder}': its folder '{folder.parent}' does not exist")
        folder.mkdir()
    outputs = []
    for name in inputs:
        path = Path(name)
        suffix = ".mkv" if path.suffix.lower() in REFUSED_CONTAINERS or not path.suffix else path.suffix
        outputs.append(folder / f"{path.stem}{suffix}")
    if len(set(outputs)) < len(outputs):
        twice = next(o for o in outputs if outputs.count(o) > 1)
        raise InvalidParameterError(f"two inputs would both be written to '{twice}'; restore them in separate runs")
    failed: list[tuple[str, int]] = []
    for number, (name, out) in enumerate(zip(inputs, outputs), 1):
        try:
            _run_one(name, out, config, args)
        except ConfigError as error:
            failed.append((name, error.exit_code))
            print(f"videodeblur: error: input '{name}' ({number}/{len(inputs)}): " + "; ".join(error.problems),
                  file=sys.stderr)
        except VideoDeblurError as error:
            if isinstance(error, Interrupted):
                raise
            failed.append((name, error.exit_code))
            print(f"videodeblur: error: input '{name}' ({number}/{len(inputs)}): {error}", file=sys.stderr)
    if failed:
        print(f"videodeblur: {len(failed)} of {len(inputs)} files failed: {', '.join(n for n, _ in failed)}",
              file=sys.stderr)
        return failed[0][1]
    print(f"videodeblur: all {len(inputs)} files restored into {folder}", file=sys.stderr)
    return 0


def _loss_warning(input_path, report) -> str | None:
    """One line saying what a completed run could not restore, or None when nothing was lost."""
    parts = []
    if report.decode_errors:
        where = sorted({frame for frame, _ in report.decode_errors})
        shown = ", ".join(str(frame) for frame in where[:20]) + (", ..." if len(where) > 20 else "")
        parts.append(f"{len(report.decode_errors)} decode error(s) skipped, at frame(s) {shown}")
    if report.frames_lost:
        parts.append(f"{report.frames} of {report.frames_declared} declared frames restored, "
                     f"{report.frames_lost} lost (truncated or damaged file)")
    if not parts:
        return None
    return f"videodeblur: warning: input '{input_path}': " + "; ".join(parts)


def _parse_crop(text):
    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InvalidParameterError(f"--crop must be X,Y,W,H in pixels, got {text!r}")
    return values


def _parse_range(text: str, frame_count: int) -> range:
    parts = text.split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or numbers[0] < 0 or numbers[1] <= numbers[0] or (len(numbers) == 3 and numbers[2] < 1):
        raise InvalidParameterError(f"--frames must be A:B or A:B:STEP with 0 <= A < B and STEP >= 1, got {text!r}")
    if numbers[1] > frame_count:
        raise InvalidParameterError(f"--frames {text}: the clip has {frame_count} frames (0 to {frame_count - 1})")
    return range(*numbers)


def _command_preview(args) -> int:
    from pathlib import Path

    from videodeblur.preview import Previewer, contact_sheet, write_png

    config = _load(args)
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InvalidParameterError(f"preview output '{output}' must be a .png file")
    crop = _parse_crop(args.crop)
    if args.sweep is not None and (args.frames is not None or args.sheet is not None):
        raise InvalidParameterError("--sweep draws one frame: give it --frame N or --time T")
    written = []
    with Previewer(args.input, config) as previewer:
        if args.sheet is not None:
            jobs = [(output, lambda: contact_sheet(previewer, args.sheet, label=args.label, upright=args.upright))]
        elif args.frames is not None:
            jobs = [(output.with_name(f"{output.stem}_{index:06d}{output.suffix}"),
                     lambda index=index: previewer.render(index, args.mode, crop, label=args.label,
                                                          upright=args.upright))
                    for index in _parse_range(args.frames, previewer.frame_count)]
        else:
            index = args.frame if args.time is None else previewer.index_at_time(args.time)
            if args.sweep is not None:
                from videodeblur.preview import sweep

                previewer.frames.check(index)
                jobs = [(output, lambda: sweep(args.input, index, args.config, _overrides(args), args.sweep, crop,
                                               label=args.label, upright=args.upright))]
            else:
                jobs = [(output, lambda: previewer.render(index, args.mode, crop, label=args.label,
                                                          upright=args.upright))]
        if not args.overwrite:  # before any work: refuse as run and estimate do
            from videodeblur.errors import OutputError

            existing = [path for path, _ in jobs if path.exists()]
            if existing:
                more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
                raise OutputError(f"output '{existing[0]}' exists{more}; pass -y to replace it")
        for path, render in jobs:  # one image in memory at a time
            write_png(path, render())
            written.append(path)
    print(f"wrote {len(written)} PNG file(s): {written[0]}" + (" ..." if len(written) > 1 else ""), file=sys.stderr)
    return 0


def _command_estimate(args) -> int:
    from pathlib import Path

    from videodeblur import registry
    from videodeblur.io.paths import check_paths
    from videodeblur.pipeline.estimate import estimate_track, plot_track, write_track_csv
    from videodeblur.pipeline.runner import progress_bar

    config = _load(args)
    kind = config.psf.kind
    if kind not in registry.estimated_kinds():
        # Estimating is the point of this command: search the family of the kind the user
        # gave, and every family when none was given (the default kind is only a default).
        estimator = registry.psf_kind(kind).estimator if _kind_given(args) else None
        searched = f"auto-{estimator}" if estimator else "auto"
        config = config.model_copy(update={"psf": config.psf.model_copy(update={"kind": searched, "keyframes": ()})})
        print(f"videodeblur: psf.kind is {kind!r}; estimating with {searched!r}", file=sys.stderr)
    output, plot = Path(args.output), Path(args.plot) if args.plot else None
    if output.suffix.lower() != ".csv":
        raise InvalidParameterError(f"estimate output '{output}' must be a .csv file")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InvalidParameterError(f"--plot '{plot}' must be a .png file")
    check_paths(Path(args.input), output, overwrite=args.overwrite, overwrite_hint="-y")
    if plot is not None:
        check_paths(Path(args.input), plot, overwrite=args.overwrite, overwrite_hint="-y")
        if plot.resolve() == output.resolve():
            raise InvalidParameterError("--plot and -o name the same file")
    from videodeblur.io import probe
    from videodeblur.pipeline.runner import expected_frames

    total = expected_frames(probe(args.input, max_frame_pixels=config.pipeline.max_frame_pixels), config.trim)
    bar = progress_bar(args.progress, total, Path(args.input).name)
    try:
        rows = estimate_track(args.input, config, progress=lambda: bar.update(1))
    finally:
        bar.close()
    write_track_csv(output, rows)
    if plot is not None:
        plot_track(plot, rows, title=Path(args.input).name)
    kinds = {}
    for row in rows:
        kinds[row.spec.kind] = kinds.get(row.spec.kind, 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"wrote {output}: {len(rows)} frames ({summary})" + (f" and {plot}" if plot else ""), file=sys.stderr)
    return 0


def _command_tune(args) -> int:
    try:
        from videodeblur.tune.server import serve
    except ImportError:
        raise InvalidParameterError('the tuning page needs aiohttp: pip install "videodeblur[tune]"') from None
    from videodeblur.tune.session import TuneSession

    if not 0 <= args.port <= 65535:
        raise InvalidParameterError(f"--port must be from 0 (a free port) to 65535, got {args.port}")
    session = TuneSession(args.input, args.config, _overrides(args), args.save)
    try:
        print("videodeblur: serving the tuning page on 127.0.0.1 until Ctrl-C", file=sys.stderr)
        serve(session, args.port, open_browser=args.open)
    finally:
        session.close()
    return 0


def _kind_given(args) -> bool:
    """Whether the user named a psf.kind (in --set or the config file)."""
    from videodeblur.config.loading import read_config_file, parse_override

    if any(parse_override(text)[0] == ("psf", "kind") for text in args.overrides):
        return True
    if args.config is None:
        return False
    psf_table = read_config_file(args.config).get("psf", {})
    return isinstance(psf_table, dict) and "kind" in psf_table


def _command_config(args) -> int:
    from pathlib import Path

    from videodeblur.config.loading import shipped_config_text, shipped_configs

    if args.config_command == "list":
        configs = shipped_configs()
        width = max(map(len, configs))
        for name, description in configs.items():
            print(f"{name:{width}}  {description}")
        print("\nUse one with --config NAME, or start your own: videodeblur config init NAME -o my.toml")
        return 0
    if args.config_command == "init":
        from videodeblur.io.paths import atomic_output

        output = Path(args.output)
        if output.suffix.lower() != ".toml":
            raise InvalidParameterError(f"config init output '{output}' must be a .toml file")
        text = shipped_config_text(args.name)
        if output.exists() and not args.overwrite:
            from videodeblur.errors import OutputError

            raise OutputError(f"output '{output}' exists; pass -y to replace it")
        if not output.parent.is_dir():
            from videodeblur.errors import OutputError

            raise OutputError(f"output '{output}': directory '{output.parent}' does not exist")
        with atomic_output(output) as temporary:
            temporary.write_text(text, encoding="utf-8")
        print(f"wrote {output} (from the shipped '{args.name}' config); use it with --config {output}",
              file=sys.stderr)
        return 0
    return _command_config_show(args)


def _command_config_show(args) -> int:
    from videodeblur.config import config_to_toml

    config = _load(args)
    sys.stdout.write(config_to_toml(config))
    if args.input is not None:
        from videodeblur.io import probe
        from videodeblur.pipeline.light import light_for

        info = probe(args.input, max_frame_pixels=config.pipeline.max_frame_pixels)
        light = light_for(config.deconvolution.light, info)
        sys.stdout.write(f"\n# For {args.input}: restored in {light.description}"
                         + (f"; {light.note}" if light.note else "") + "\n")
    return 0


#: Signals that stop a command as Ctrl-C does (a job scheduler's kill, a closed terminal); the
#: exit code is 128 + the signal's number, as shells report it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class _Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM or SIGHUP: every Ctrl-C cleanup path runs."""


_received: list[int] = []


def _stop(signum, frame):
    if not _received:  # a second signal while cleaning up must not interrupt the cleanup
        _received.append(signum)
        raise _Stopped(signum)


def _interrupted_exit(message: str) -> int:
    if _received:
        name = signal.Signals(_received[0]).name
        print(f"videodeblur: stopped by {name}: {message.removeprefix('interrupted: ')}", file=sys.stderr)
        return 128 + _received[0]
    print(f"videodeblur: {message}", file=sys.stderr)
    return 130


def main(argv=None) -> int:
    """Entry point of the ``videodeblur`` console script; returns the exit code.

    SIGTERM and SIGHUP stop a command as Ctrl-C does (workers stopped, no partial output left)
    with exit 143 and 129.
    """
    _received.clear()
    if threading_is_main():
        for number in STOP_SIGNALS:
            signal.signal(number, _stop)
    args = build_parser().parse_args(argv)
    handler = {"run": _command_run, "preview": _command_preview, "estimate": _command_estimate,
               "tune": _command_tune, "config": _command_config}[args.command]
    try:
        return handler(args)
    except ConfigError as error:
        print("videodeblur: invalid config:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return error.exit_code
    except Interrupted as error:
        return _interrupted_exit(str(error))
    except VideoDeblurError as error:
        print(f"videodeblur: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return _interrupted_exit("interrupted")
    except Exception as error:  # noqa: BLE001 - last resort: one line, traceback only on request
        if os.environ.get("VIDEODEBLUR_DEBUG"):
            raise
        print(f"videodeblur: internal error: {type(error).__name__}: {error} "
              "(set VIDEODEBLUR_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
