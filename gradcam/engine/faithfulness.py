"""How far to trust one map: does deleting what it highlights change the model's answer?

Deletion against a control, after ROAD (Rong et al. 2022) and pytorch-grad-cam's confidence-change
metrics, computed per image in the job's batches. The map, upsampled to the model input, ranks the
input's pixels. Its hottest `share` of the pixels is replaced by a blurred copy of the image, and,
in a second copy, its coldest `share` is. Blurred, not black: a black hole is a strong feature of
its own, and its outline can give the class away. A map that holds the decision makes the explained
score fall much more when its hot region goes than when its cold region goes:

    faithfulness = (p_cold_deleted - p_hot_deleted) / max(p, p_hot_deleted, p_cold_deleted)

in -1..1, p being the probability of the explained class (Task.faithfulness; regression compares
the absolute changes of its output). About 1: the highlighted region carries the decision. About 0:
the map ranks the pixels no better than chance; a uniform map scores exactly 0, its hot and cold
regions being the same pixels. Below 0: what the map highlights matters less than what it leaves out.

The cost is two forward passes per image, run as one batch.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from gradcam.engine.tasks import Task

DELETED_SHARE = 0.2  # of the model input's pixels, deleted per copy
BLUR = 1 / 16  # the blurred copy's Gaussian sigma, as a share of the input's short side
# Maps scoring below this are "maps not to trust" in the report. Measured on the bundled example's
# test images (tests/test_faithfulness.py), mean scores: the shapes model's own maps 0.67 (88% of
# them >= 0.2), random maps 0.05, the model with re-initialised weights 0.01; MobileNetV2 96x96:
# 0.53 (90%), 0.01, 0.00.
TRUST_THRESHOLD = 0.2
# A score is given to this many decimals: finer differences are the float32 pass's noise, and the
# trust threshold is then applied to the very value that results.csv and the report show.
DECIMALS = 4


def hottest(heat: np.ndarray, share: float = DELETED_SHARE) -> np.ndarray:
    """Weights (N, H, W) in 0..1 that sum to share * H * W per map: 1 on each map's hottest pixels.
    Pixels tied at the cut share what is left equally, so that the choice never depends on pixel order."""
    flat = heat.reshape(len(heat), -1)
    size = share * flat.shape[1]
    cut = np.sort(flat, axis=1)[:, flat.shape[1] - int(np.ceil(size))][:, None]
    above, tied = flat > cut, flat == cut
    left = (size - above.sum(axis=1, keepdims=True)) / tied.sum(axis=1, keepdims=True)
    return (above + tied * left).reshape(heat.shape).astype(np.float32)


def upsampled(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Maps (N, h, w) bilinearly resized to the model input (N, H, W)."""
    return np.stack([cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])


def blurred(images: np.ndarray) -> np.ndarray:
    """A Gaussian-blurred copy of each model input (N, H, W, C), sigma BLUR of its short side."""
    sigma = BLUR * min(images.shape[1:3])
    return np.stack([cv2.GaussianBlur(x, (0, 0), sigma).reshape(x.shape) for x in images])


def deleted(images: np.ndarray, maps: np.ndarray, share: float = DELETED_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Two copies of the model inputs (N, H, W, C): the maps' hottest `share` replaced by the blurred
    image, and their coldest `share` replaced by it."""
    heat = upsampled(maps, *images.shape[1:3])
    fill = blurred(images)

    def replace(weights: np.ndarray) -> np.ndarray:
        w = weights[..., None]
        return images * (1 - w) + fill * w

    return replace(hottest(heat, share)), replace(hottest(-heat, share))


def measure(
    predict: Callable[[np.ndarray], np.ndarray],
    task: Task,
    images: np.ndarray,
    maps: np.ndarray,
    outputs: np.ndarray,
    classes: np.ndarray,
    share: float = DELETED_SHARE,
) -> np.ndarray:
    """The faithfulness of each map (N,) in -1..1. images: the model inputs (N, H, W, C) the maps
    explain; outputs: the model's outputs on them; classes: the class each map explains
    (Task.explained_classes); predict: model inputs -> outputs."""
    hot, cold = deleted(images, maps, share)
    changed = predict(np.concatenate([hot, cold]))
    n = len(images)
    before, without_hot, without_cold = (task.explained(o, classes) for o in (outputs, changed[:n], changed[n:]))
    return task.faithfulness(before, without_hot, without_cold)
