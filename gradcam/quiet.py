"""Native libraries' start-up chatter (TensorFlow's absl and oneDNN notices, TFLite's XNNPACK
line, OpenCV's warnings) kept off stderr, which carries only the job's one-line errors. Python's
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


def import_quietly() -> None:
    """Import TensorFlow and Keras with their C++ start-up chatter kept off stderr (once, however
    often called), and keep OpenCV's warnings (a truncated PNG's) off it too: such an image is
    skipped with its reason. The devices are listed inside the capture: the `tensorflow` build
    (not `tensorflow-cpu`, what `pip install .` gets) logs a failed CUDA start there on a machine
    without a GPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_captured():
        import cv2
        import keras  # noqa: F401
        import tensorflow
        import tf_keras  # noqa: F401

        tensorflow.config.list_physical_devices()

    _opencv_errors_only(cv2)


def _opencv_errors_only(cv2) -> None:
    """OpenCV 4 has `cv2.setLogLevel`; OpenCV 5 moved it to `cv2.utils.logging` (level 2 is ERROR in both)."""
    if hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(2)
    else:
        import cv2.utils.logging

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
