"""Progress for long work: a bar on a terminal, else a log line every few seconds (Studio shows stdout)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

IMAGES, WINDOWS = ("images", "img"), ("windows", "win")  # what is counted, and its short form


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Count work done; `update` is cheap, output is throttled."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, every: float = 5.0, unit: tuple[str, str] = IMAGES
    ):
        """unit: what is counted, and its short form for rates (IMAGES, WINDOWS)."""
        self.total, self.label, self.every = total, label, every
        self.noun, self.short = unit
        self.stream = stream or sys.stdout
        self.done = 0
        self.start = self._last = time.monotonic()
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = tqdm(total=total, desc=label, unit=self.short, file=self.stream) if interactive else None

    def update(self, n: int = 1) -> None:
        """Count n more; a log line for the first (the work has started), then every few seconds."""
        first = self.done == 0
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if first:  # one image says nothing of the rate: the first batch finishes all at once
            self._last = now
            print(
                f"{self.label}: {self.done}/{self.total} {self.noun}, the first after {now - self.start:.1f}s",
                file=self.stream,
                flush=True,
            )
        elif now - self._last >= self.every:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = _duration(eta) if eta != float("inf") else "?"
        return f"{self.label}: {self.done}/{self.total} {self.noun}, {rate:.1f} {self.short}/s, ETA {eta_text}"

    def close(self) -> float:
        """Stop; returns the elapsed seconds."""
        if self._bar is not None:
            self._bar.close()
        return time.monotonic() - self.start
