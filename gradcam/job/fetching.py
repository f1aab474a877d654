"""Per-sample downloads for windows (a motion window's raw signal): fetched once per sample, a few at a
time, from when its first window is prepared; the latest few kept for the sample's other windows,
which come next in row order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")

T = TypeVar("T")
FETCHERS = 4  # samples downloaded at a time
KEPT = 64  # downloads kept (the latest started); an older sample's is fetched again if asked for


class PerSample(Generic[T]):
    """One download per sample id, started by `start` and waited for by `get`; a failed one is None,
    said once (later failures are not logged). Memory stays flat: at most KEPT downloads are held."""

    def __init__(self, fetch: Callable[[int], T], what: str):
        self._fetch, self._what = fetch, what
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._failed = False
        self._pool = ThreadPoolExecutor(FETCHERS, thread_name_prefix="fetch")

    def start(self, sample_id: int) -> Future:
        with self._lock:
            if sample_id not in self._futures:
                self._futures[sample_id] = self._pool.submit(self._fetch, sample_id)
                while len(self._futures) > KEPT:
                    self._futures.pop(next(iter(self._futures)))
            return self._futures[sample_id]

    def get(self, sample_id: int) -> T | None:
        """The sample's download once done (started now if it was not, or no longer is); None where it failed."""
        try:
            return self.start(sample_id).result()
        except GradcamError as exc:
            with self._lock:
                if not self._failed:
                    log.warning("warning: %s: %s (later failures are not logged)", exc, self._what)
                self._failed = True
            return None

    def close(self) -> None:
        """Stop fetching (the job ended, or was stopped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
