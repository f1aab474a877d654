"""Signals that end the job, remembered as well as raised. A KeyboardInterrupt raised while native
code runs on the main thread (TensorFlow, OpenCV) can be cleared there without a trace; the batch
loop asks again after every sample (`check`), so a signal always ends the job."""

from __future__ import annotations

import signal


class Terminated(BaseException):
    """SIGTERM (`docker stop`, Studio cancelling the job), raised where the job is, so that it ends
    as Ctrl-C does: its half-written deploy.zip removed."""


_pending: type[BaseException] | None = None


def _stop(signum: int, frame) -> None:
    global _pending
    _pending = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    raise _pending


def install() -> None:
    """SIGTERM, and SIGINT unless it is ignored (as in a background job), end the job by raising
    where it is: KeyboardInterrupt and Terminated."""
    global _pending
    _pending = None
    signal.signal(signal.SIGTERM, _stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)


def check() -> None:
    """Raise the stop that a signal asked for, in case its first raise was lost."""
    if _pending is not None:
        raise _pending
