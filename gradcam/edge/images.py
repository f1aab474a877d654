"""Image files -> RGB arrays no larger than the job needs, and their size in the file.

A 12-megapixel camera JPEG takes 36 MB decoded, and its heatmap and overlay as much again, while
the model sees 96x96 and the overlay is at most --max-overlay-size pixels on its long side.
libjpeg decodes at 1/2, 1/4 or 1/8 of the size almost for free (it scales in the DCT), so a large
JPEG is decoded at the smallest of those that is still at least `min_side` on its long side.
Other formats are decoded in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}  # JPEG markers without a length field (TEM, RSTn, SOI)
_FRAME_HEADERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; C4, C8, CC are other segments


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read without decoding; None if not a JPEG.
    The size as stored: an EXIF orientation may turn it when decoded."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF or marker in _NO_LENGTH:  # fill byte, or a marker with no segment
            i += 1 if marker == 0xFF else 2
            continue
        if marker in _FRAME_HEADERS:
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # RGB uint8, maybe reduced
    original: tuple[int, int]  # (width, height) of the full-size image, as displayed


def decode(data: bytes, min_side: int = 0) -> Decoded | None:
    """Decode an image file as RGB (EXIF orientation applied), reduced while its long side stays
    >= min_side (0: full size); None if OpenCV cannot decode it."""
    stored = jpeg_size(data) if min_side else None
    factor, flag = next(((f, flag) for f, flag in _REDUCED if stored and max(stored) // f >= min_side), (1, None))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flag is None else flag)
    if image is None:
        return None
    height, width = image.shape[:2]
    original = (width, height)
    if factor > 1:  # the stored size, turned as the decoded image was
        original = stored if (stored[0] >= stored[1]) == (width >= height) else stored[::-1]
    return Decoded(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), original)


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its long side at most max_side pixels (0: as it is), by area averaging."""
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image
    ratio = max_side / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
