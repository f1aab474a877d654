"""Signals that end the job, remembered as well as raised. A KeyboardInterrupt raised while native
code runs on the main thread (TensorFlow, OpenCV) can be cleared there without a trace; the batch
loop asks again after every sample (`check`), so a signal always ends the job."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(BaseException):
    """SIGTERM (`docker stop`, Studio cancelling the job), raised where the job is, so that it ends
    as Ctrl-C does: its half-written deploy.zip removed."""


_pending: type[BaseException] | None = None
_deferred = False


def _stop(signum: int, frame) -> None:
    global _pending
    _pending = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    if not _deferred:
        raise _pending


@contextmanager
def handled() -> Iterator[None]:
    """Within the block, SIGTERM, and SIGINT unless it is ignored (as in a background job), end
    the job by raising where it is: Terminated and KeyboardInterrupt. The handlers before it are
    restored after it (the command line's `main` may be called in a longer-lived process)."""
    global _pending
    _pending = None
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    before = {signum: signal.signal(signum, _stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block, a signal is remembered, not raised; it is raised as the block ends. For
    writes that a stop must not cut in half: a zip entry cut while open leaves the zip unable to
    close, and Python then reports that on stderr as the file is let go."""
    global _deferred
    outer, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = outer
    check()


def check() -> None:
    """Raise the stop that a signal asked for, in case its first raise was lost."""
    if _pending is not None:
        raise _pending
