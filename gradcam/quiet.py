"""Native libraries' start-up chatter (TensorFlow's absl and oneDNN notices, TFLite's XNNPACK
line) kept off stderr, which carries only the job's one-line errors. Python's
TF_CPP_MIN_LOG_LEVEL does not reach all of it, so file descriptor 2 itself is redirected."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Capture what native code writes to stderr inside the block; replay it if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
