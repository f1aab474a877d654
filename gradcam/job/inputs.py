"""A sample's image file -> the image as it will be shown and the model's input: read, decoded in
full (gradcam.edge.images) and preprocessed as Edge Impulse's image block does; the picture shown at
most the overlay's size. Runs in the job's thread pool (OpenCV, NumPy and libvips release the GIL)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gradcam.edge.dataset import Dataset, Sample
from gradcam.edge.images import decode, downscale
from gradcam.engine.preprocess import Geometry
from gradcam.explainer import Explainer

# Pictures of smaller images are enlarged to at least this many pixels on their long side: a 96x96
# overlay is a thumbnail, and a panel's caption would not fit under it.
MIN_SHOWN = 256


@dataclass(frozen=True)
class Prepared:
    """One sample ready for the model, or the reason it cannot be explained."""

    sample: Sample
    image: np.ndarray | None = None  # as shown in the overlay: at most the overlay size on its long side
    inputs: np.ndarray | None = None  # the model input
    geometry: Geometry | None = None  # of the model input in `image`
    original: tuple[int, int] = (0, 0)  # (width, height) of the image in the file
    reason: str = ""  # why it cannot be explained; "" when it can


class ImageInputs:
    """Reads the samples of a dataset as images for one explainer."""

    def __init__(self, dataset: Dataset, explainer: Explainer, max_side: int):
        """max_side: the long side of the image kept for the overlay (0: the file's size)."""
        self.dataset, self.explainer, self.max_side = dataset, explainer, max_side

    def prepare(self, sample: Sample) -> Prepared:
        try:
            data = self.dataset.read(sample)
        except (OSError, KeyError) as exc:
            return Prepared(sample, reason=f"cannot read the file ({exc})")
        image = decode(data)
        if image is None:
            return Prepared(sample, reason="not a decodable image (corrupt or unsupported format)")
        inputs, geometry = self.explainer.prepare(image)
        shown = enlarged(downscale(image, self.max_side), self.max_side)
        (height, width), (shown_height, shown_width) = image.shape[:2], shown.shape[:2]
        geometry = geometry.resized(shown_width / width, shown_height / height)
        return Prepared(sample, shown, inputs, geometry, (width, height))


def enlarged(image: np.ndarray, max_side: int = 0) -> np.ndarray:
    """A small image enlarged by a whole factor until its long side is at least MIN_SHOWN (never past
    max_side, 0: no limit), each pixel a sharp block; the heatmap drawn over it stays smooth, being
    mapped at the enlarged size."""
    long_side = max(image.shape[:2])
    factor = -(-MIN_SHOWN // long_side)  # the ceiling
    if max_side:
        factor = min(factor, max_side // long_side)
    if factor <= 1:
        return image
    return cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)


class FrameMap:
    """The picture of a sample as shown -> the model's input frame, resized to `frame` (width, height):
    for the class summaries (gradcam.job.looks)."""

    def __init__(self, geometry: Geometry, model_size: tuple[int, int], frame: tuple[int, int]):
        self.geometry, self.frame = geometry, frame
        self.kx, self.ky = model_size[0] / frame[0], model_size[1] / frame[1]  # model pixels per frame pixel

    def image(self, shown: np.ndarray) -> np.ndarray:
        """What the model saw, at the frame's size (black where a letterbox padded it)."""
        return cv2.warpAffine(shown, self._inverse(), self.frame, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    def seen(self, shown: tuple[int, ...]) -> np.ndarray | None:
        """The frame's pixels the picture covers (bool); None when it covers them all."""
        flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        covered = cv2.warpAffine(np.ones(shown[:2], np.uint8), self._inverse(), self.frame, flags=flags) > 0
        return None if covered.all() else covered

    def _inverse(self) -> np.ndarray:
        """The affine map from a frame pixel to the shown picture's: centre (u + 0.5) -> model
        (u + 0.5) * k -> shown pixel index (that * scale + offset - 0.5)."""
        g, kx, ky = self.geometry, self.kx, self.ky
        return np.array(
            [
                [kx * g.scale_x, 0, 0.5 * kx * g.scale_x + g.offset_x - 0.5],
                [0, ky * g.scale_y, 0.5 * ky * g.scale_y + g.offset_y - 0.5],
            ]
        )

    def boxes(
        self, boxes, original: tuple[int, int], shown: tuple[int, ...]
    ) -> tuple[tuple[float, float, float, float], ...] | None:
        """Boxes in the file's pixels -> (x0, y0, x1, y1) in the frame; None when there are none."""
        if not boxes:
            return None
        sx, sy = shown[1] / original[0], shown[0] / original[1]

        def point(x: float, y: float) -> tuple[float, float]:
            mx, my = self.geometry.to_model((x * sx, y * sy))
            return mx / self.kx, my / self.ky

        return tuple((*point(b.x, b.y), *point(b.x + b.width, b.y + b.height)) for b in boxes)


def in_original(point: tuple[int, int], shown: tuple[int, ...], original: tuple[int, int]) -> tuple[int, int]:
    """A pixel of the image as shown -> the pixel of the image in the file under its centre."""
    (x, y), (height, width) = point, shown[:2]
    return min(int((x + 0.5) * original[0] / width), original[0] - 1), min(
        int((y + 0.5) * original[1] / height), original[1] - 1
    )
