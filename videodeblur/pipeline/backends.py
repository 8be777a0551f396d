"""Where a segmented run's segments are rendered: local processes or a Dask cluster, both
through joblib (its ``loky`` process pool, and its Dask backend on a ``distributed.Client``).

The driver (this module, in the process the user started) plans the segments, hands the
missing ones out as jobs, records each as it finishes, and joins them into the output once
all are there (:mod:`videodeblur.pipeline.segments`). A worker that dies mid-segment is
retried by Dask's scheduler; a segment that fails (a damaged frame, a full disk) does not
stop the others, so everything that can be finished is kept for the next try.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from videodeblur.config import Config
from videodeblur.errors import InputError, Interrupted, InvalidParameterError, ProcessingError
from videodeblur.io.paths import check_video_output
from videodeblur.io import VideoReader, atomic_output, check_paths
from videodeblur.io.frame_index import frame_index
from videodeblur.pipeline import segments as seg

#: Seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT_S = 20


def _jobs_on_processes(jobs: list[seg.SegmentJob], workers: int) -> Iterator[seg.SegmentRecord]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=min(workers, len(jobs)), backend="loky", return_as="generator_unordered",
                        batch_size=1, pre_dispatch="all")
    yield from parallel(delayed(seg.render_segment)(job) for job in jobs)


def _jobs_on_dask(jobs: list[seg.SegmentJob], address: str) -> Iterator[seg.SegmentRecord]:
    try:
        import joblib
        from distributed import Client
    except ImportError:
        raise InvalidParameterError('pipeline.backend = "dask" needs the cluster extra: '
                                    'pip install "videodeblur[cluster]"') from None
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise InvalidParameterError(f"pipeline.scheduler: no Dask scheduler answers at {address} ({error})") from None
    with client, joblib.parallel_config(backend="dask", scheduler_host=client.scheduler.address):
        parallel = joblib.Parallel(n_jobs=-1, return_as="generator_unordered", batch_size=1, pre_dispatch="all")
        yield from parallel(joblib.delayed(seg.render_segment)(job) for job in jobs)


def execute(jobs: list[seg.SegmentJob], config: Config) -> Iterator[seg.SegmentRecord]:
    """Render ``jobs`` on the configured backend; yields each record as its segment finishes."""
    if not jobs:
        return iter(())
    if config.pipeline.backend == "dask":
        return _jobs_on_dask(jobs, config.pipeline.scheduler)
    return _jobs_on_processes(jobs, config.resolved_workers())


class SegmentProgress:
    """Segments and frames done, with the rate and an ETA, on the run's progress bar
    (:func:`videodeblur.pipeline.runner.progress_bar`: plain lines without a terminal)."""

    def __init__(self, enabled: bool | None, total_frames: int, total_segments: int, done_frames: int,
                 done_segments: int, name: str):
        from videodeblur.pipeline.runner import progress_bar

        self.bar = progress_bar(enabled, total_frames, name)
        self.total_segments, self.done_segments = total_segments, done_segments
        self.bar.update(done_frames)
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(f"segments {self.done_segments}/{self.total_segments}", refresh=True)

    def finished(self, record: seg.SegmentRecord) -> None:
        self.done_segments += 1
        self._show()  # first, so that a line the update prints counts this segment
        self.bar.update(record.frames)

    def close(self) -> None:
        self.bar.close()


def run_segmented(input_path: Path, output_path: Path, config: Config, *, overwrite: bool,
                  progress: bool | None, report_type: Callable):
    """:func:`videodeblur.pipeline.runner.deblur_file` for the processes and dask backends."""
    check_paths(input_path, output_path, overwrite=overwrite)
    check_video_output(output_path)
    pipeline = config.pipeline
    with VideoReader(input_path, max_frame_pixels=pipeline.max_frame_pixels) as reader:
        info = reader.info
        frames = frame_index(input_path, info.stream_index)
    context = seg.pass_context(frames, config.trim)
    plan = seg.plan_segments(context, seg.segment_length(config, frames))
    if not plan:
        raise InputError(f"input '{input_path}': no video frame decoded in the selected range")
    key = seg.run_key(input_path, config, plan)
    folder = seg.segment_folder(output_path)
    suffix = output_path.suffix or ".mkv"
    records = seg.prepare_folder(folder, key, plan, suffix)
    reused = len(records)
    jobs = [seg.SegmentJob(str(input_path.resolve()), str(folder.resolve()), suffix, segment, context, config, key)
            for segment in seg.missing(plan, records)]
    bar = SegmentProgress(progress, sum(s.frames for s in plan), len(plan),
                          sum(r.frames for r in records.values()), len(records), input_path.name)
    failures = []
    try:
        for record in execute(jobs, config):
            records[record.segment] = record
            if record.error:
                failures.append(record)
            else:
                bar.finished(record)
    except KeyboardInterrupt:
        done = sum(1 for r in records.values() if not r.error)
        raise Interrupted(f"interrupted: {done} of {len(plan)} segments finished are kept in '{folder}'; "
                          "the same command resumes from them; no output written") from None
    except (OSError, RuntimeError) as error:  # a dead process pool, a lost scheduler, a worker killed too often
        raise ProcessingError(_unfinished(plan, records, folder, f"{type(error).__name__}: {error}")) from None
    finally:
        bar.close()
    if failures or any(s not in records for s in plan):
        first = failures[0] if failures else None
        reason = (f"segment {first.segment.describe()} failed: {first.error}" if first
                  else "segments were not rendered")
        raise ProcessingError(_unfinished(plan, records, folder, reason))
    total = seg.expect_frames(plan, records)
    paths = [folder / f"{segment.name}{suffix}" for segment in plan]
    with atomic_output(output_path) as temporary:
        _, copied = seg.join_segments(input_path, paths, temporary, seg.copy_span(frames, context, config.trim,
                                                                                   info.time_base), config)
    seg.remove_folder(folder)
    notes = tuple(dict.fromkeys(r.note for r in records.values() if r.note))
    trimmed = any(v is not None for v in (config.trim.start_frame, config.trim.end_frame,
                                          config.trim.start_s, config.trim.end_s))
    return report_type(output_path, total, copied, None if trimmed else info.frame_count, (),
                       light=records[plan[0]].light, notes=notes,
                       point_lights=sum(r.point_lights for r in records.values()),
                       held_back=sum(r.held_back for r in records.values()),
                       grown=sum(r.grown for r in records.values()),
                       clipped_frames=sum(r.clipped_frames for r in records.values()), segments=len(plan),
                       segments_reused=reused)


def _unfinished(plan, records, folder, reason: str) -> str:
    done = sum(1 for s in plan if s in records and not records[s].error)
    return (f"{reason}; {done} of {len(plan)} segments finished are kept in '{folder}' and the same "
            "command renders only the rest")
