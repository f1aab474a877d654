"""Image files -> RGB arrays, and the picture shown of them.

An image is decoded in full (its EXIF orientation applied): the model's input is resized from the
whole image, as Studio's image block resizes it (gradcam.engine.resize), whatever size the overlay
is drawn at. A reduced JPEG decode (libjpeg's 1/2 .. 1/8) was cheaper on camera photos, but its
Lanczos-3 input differed from the full image's by up to 6 grey levels (fit-short, 96x96).
"""

from __future__ import annotations

import cv2
import numpy as np


def decode(data: bytes) -> np.ndarray | None:
    """An image file as RGB uint8 (EXIF orientation applied); None if OpenCV cannot decode it."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its long side at most max_side pixels (0: as it is), by area averaging."""
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image
    ratio = max_side / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
