"""The batch loop: samples -> prepare (threads) -> the model, batch by batch -> render (threads) ->
deploy.zip. It knows the stages only through their protocol (gradcam.job.stages).

Preparing and rendering run in a small thread pool (OpenCV and NumPy release the GIL) while the
model works on the current batch; at most two batches are preparing and one is rendering, and a
record is summed into the running totals and let go once written, so memory does not grow with the
dataset.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import cv2
from threadpoolctl import threadpool_limits

from gradcam import stopping
from gradcam.edge.dataset import Sample
from gradcam.job.inputs import Prepared
from gradcam.job.progress import Progress
from gradcam.job.records import Rendered, Skipped
from gradcam.job.stages import Stages
from gradcam.job.totals import RunningTotals
from gradcam.report.writer import DeployZip


class StageTimes:
    """Seconds spent per stage, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def timed(self, stage: str, step: Callable) -> Callable:
        """`step`, adding the time of each call to `stage`."""

        def run(*args):
            start = time.perf_counter()
            out = step(*args)
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
            return out

        return run


def _prepared(pool: ThreadPoolExecutor, prepare, samples: list[Sample], size: int) -> Iterator[list[Prepared]]:
    """Batches of prepared samples; the next batch prepares in the pool while the caller uses this one."""
    batches = (samples[i : i + size] for i in range(0, len(samples), size))
    pending: deque[list[Future]] = deque()
    for batch in itertools.islice(batches, 2):
        pending.append([pool.submit(prepare, s) for s in batch])
    while pending:
        current = pending.popleft()
        upcoming = next(batches, None)
        if upcoming is not None:
            pending.append([pool.submit(prepare, s) for s in upcoming])
        yield [f.result() for f in current]


@contextmanager
def _one_thread_each() -> Iterator[None]:
    """OpenCV's and BLAS's own thread pools down to one thread while the job's threads share the
    cores: their calls here are small (a 288x288 picture's warp or matrix product), and their extra
    threads only contend with the job's (measured: 17% less wall time on 2,000 96x96 images)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(previous)


def run_batches(
    samples: list[Sample],
    stages: Stages,
    output: DeployZip,
    running: RunningTotals,
    batch_size: int,
    progress: Progress,
    times: StageTimes,
) -> list[Skipped]:
    """Explain every sample into `output`, each record summed into `running` and then let go: the
    samples that could not be read."""
    skipped: list[Skipped] = []
    prepare, run = times.timed("decode", stages.prepare), times.timed("model", stages.run)
    render, add = times.timed("overlay+encode", stages.render), times.timed("zip", output.add)

    def write(futures: list[Future]) -> None:
        for future in futures:
            rendered: Rendered = future.result()
            add(rendered.record, rendered.pictures)
            running.add(rendered.record, rendered.view)
            progress.update()
            stopping.check()

    with _one_thread_each(), ThreadPoolExecutor(max_workers=2) as pool:
        rendering: deque[list[Future]] = deque()
        for batch in _prepared(pool, prepare, samples, batch_size):
            for p in batch:
                if p.reason:
                    skipped.append(Skipped(p.sample.path, p.reason))
                    progress.update()
            good = [p for p in batch if not p.reason]
            if good:
                rendering.append([pool.submit(render, p, out) for p, out in zip(good, run(good), strict=True)])
            while len(rendering) > 1:
                write(rendering.popleft())
        while rendering:
            write(rendering.popleft())
    return skipped
