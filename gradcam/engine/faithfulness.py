"""How far to trust one map: does deleting what it highlights change the model's answer?

Deletion against a control, after ROAD (Rong et al. 2022) and pytorch-grad-cam's confidence-change
metrics, computed inside the CAM pass, batched. The map, upsampled to the model input, ranks the
input's pixels. Its hottest `share` of the pixels is replaced by a blurred copy of the image, and,
in a second copy, its coldest `share` is. Blurred, not black: a black hole is a strong feature of
its own, and its outline can give the class away.

The change is read on the explained class's *evidence*, the model's score before it saturates
(Task.evidence): the log-odds of the class, log p / (1 - p), for a softmax (its logit against the
log-sum-exp of the others) and for a sigmoid (the signed logit). Probabilities are useless here: a
confident model gives p = 0.99 with or without the highlighted region, while its log-odds fall from
9.8 to 6.2. With s the evidence, d_hot = s - s_without_hot and d_cold = s - s_without_cold,

    faithfulness = (d_hot - d_cold) / max(|s|, |d_hot| + |d_cold|)

in -1..1: how much more of the class's log-odds (counted from even odds) the highlighted region
carries than the region the map leaves out. About 1: deleting the highlighted region takes the
evidence away, deleting the rest does not. About 0: the map ranks the pixels no better than chance
(a uniform map scores exactly 0, its hot and cold regions being the same pixels), or the model's
answer hardly depends on the image (a model with re-initialised weights). Below 0: what the map
leaves out matters more. Scaling the logits (a more confident model, same answers) scales s, d_hot
and d_cold alike (exactly for a sigmoid, nearly for a softmax): the score hardly moves. A
regression's value may move either way: (|d_hot| - |d_cold|) / max(|d_hot|, |d_cold|).

Everything runs inside the CAM pass (gradcam.engine.cam): the blur, the ranking and the masks as
TensorFlow ops, and the 2N deleted copies through the model as one batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from gradcam.engine.tasks import Task
from gradcam.engine.traced import traced
from gradcam.errors import GradcamError

if TYPE_CHECKING:
    from gradcam.engine.model import Forward

DELETED_SHARE = 0.2  # of the model input's pixels, deleted per copy
BLUR = 1 / 16  # the blurred copy's Gaussian sigma, as a share of the input's short side
# A score is given to this many decimals: finer differences are the float32 pass's noise, and the
# trust threshold is then applied to the very value that results.csv and the report show.
DECIMALS = 4


def given(score: float | None) -> float | None:
    """A score as it is given, to DECIMALS places (None: not measured)."""
    return None if score is None else round(float(score), DECIMALS)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """OpenCV's Gaussian kernel for float images (cv2.GaussianBlur with a size of 0): round(8 sigma + 1)
    taps, made odd, normalised."""
    size = round(sigma * 8 + 1) | 1
    x = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).astype(np.float32)


def blur_matrix(size: int, kernel: np.ndarray) -> np.ndarray:
    """The (size, size) matrix that blurs a row of `size` pixels with `kernel`, its borders mirrored
    as OpenCV's BORDER_REFLECT_101 mirrors them (gfedcb|abcdefgh|gfedcba)."""
    radius = len(kernel) // 2
    matrix = np.zeros((size, size), np.float64)
    for i in range(size):
        for tap, weight in enumerate(kernel):
            j = i + tap - radius
            while not 0 <= j < size:  # mirrored about the edge pixels, as often as the kernel needs
                j = -j if j < 0 else 2 * (size - 1) - j
            matrix[i, j] += weight
    return matrix.astype(np.float32)


def blurred(images: tf.Tensor) -> tf.Tensor:
    """A Gaussian-blurred copy of each model input (N, H, W, C), sigma BLUR of its short side, mirrored
    borders (reflect-101, as OpenCV's): one matrix product per axis, which the CPU does much faster
    than a depthwise convolution with a kernel this wide."""
    height, width = images.shape[1:3]
    kernel = gaussian_kernel(BLUR * min(height, width))
    rows, cols = blur_matrix(height, kernel), blur_matrix(width, kernel)
    return tf.einsum("hy,nywc,xw->nhxc", rows, images, cols)


def background(features: tf.Tensor, blocks: Sequence[tuple[int, int]] | None = None) -> tf.Tensor:
    """Each window of features (N, rows, columns, C) as its background, in each DSP block's own
    layout: every frame replaced by its column's median over the block's frames. blocks: each block's
    (frames, columns), side by side in the flat features (gradcam.edge.layout); None: one block whose
    frames are the input's rows. Deleting a sound then leaves the band's usual level behind; a blur
    would leave most of a sound longer than the kernel in place."""
    values = int(np.prod(features.shape[1:]))
    blocks = blocks or [(features.shape[1], values // features.shape[1])]
    flat, parts, offset = tf.reshape(features, (-1, values)), [], 0
    for frames, columns in blocks:
        part = tf.reshape(flat[:, offset : offset + frames * columns], (-1, frames, columns))
        ordered = tf.sort(part, axis=1)
        middle = (ordered[:, (frames - 1) // 2] + ordered[:, frames // 2]) / 2
        parts.append(tf.reshape(tf.broadcast_to(middle[:, None], tf.shape(part)), (-1, frames * columns)))
        offset += frames * columns
    return tf.reshape(tf.concat(parts, axis=1), tf.shape(features))


Fill = Callable[[tf.Tensor], tf.Tensor]
FILLS = ("blur", "background")  # what a deleted region becomes: images, features


def fill_for(name: str, blocks: Sequence[tuple[int, int]] | None = None) -> Fill:
    """The fill of a name in FILLS; background: in the DSP blocks' layout (None: the input's rows are frames)."""
    if name not in FILLS:
        raise GradcamError(f"fill {name!r}: expected one of {', '.join(FILLS)}")
    return blurred if name == "blur" else functools.partial(background, blocks=blocks)


def _hottest(heat: tf.Tensor, share: float, region: tf.Tensor) -> tf.Tensor:
    """Weights (N, H, W) in 0..1 that sum to `share` of each map's region: 1 on its hottest pixels
    there. Pixels tied at the cut share what is left equally, so that the choice never depends on
    pixel order."""
    pixels = int(np.prod(heat.shape[1:]))
    flat = tf.reshape(heat, (-1, pixels))
    inside = tf.reshape(region, (-1, pixels)) > 0
    size = share * tf.reduce_sum(tf.cast(inside, tf.float32), axis=1, keepdims=True)
    ordered = tf.sort(tf.where(inside, flat, -np.inf), axis=1, direction="DESCENDING")
    count = tf.cast(tf.math.ceil(size), tf.int32)
    cut = tf.gather(ordered, tf.maximum(count - 1, 0), batch_dims=1)
    beyond = tf.cast(inside & (flat > cut), tf.float32)
    tied = tf.cast(inside & (flat == cut), tf.float32)
    left = tf.math.divide_no_nan(size - tf.reduce_sum(beyond, axis=1, keepdims=True), tf.reduce_sum(tied, 1, True))
    return tf.reshape(beyond + tied * left, tf.shape(heat))


def hottest(
    heat: tf.Tensor, share: float = DELETED_SHARE, region: tf.Tensor | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Weights (N, H, W) that delete the hottest `share` of each map's pixels, and its coldest; within
    `region` (N, H, W) when given (a FOMO object's neighbourhood), else the whole map."""
    region = tf.ones_like(heat) if region is None else region
    return _hottest(heat, share, region), _hottest(-heat, share, region)


def deleted(
    images: tf.Tensor,
    maps: tf.Tensor,
    share: float = DELETED_SHARE,
    region: tf.Tensor | None = None,
    fill: Fill = blurred,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Two copies of the model inputs (N, H, W, C): the maps' hottest `share` replaced by the filled
    input (blurred, or the features' background), and their coldest `share` replaced by it.
    maps: (N, h, w), upsampled bilinearly; region: (N, h', w') where to delete (None: everywhere),
    upsampled to the nearest."""
    size = images.shape[1:3]
    heat = tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
    if region is not None:
        region = tf.image.resize(tf.cast(region, tf.float32)[..., None], size, method="nearest")[..., 0]
    filled = fill(images)

    def replace(weights: tf.Tensor) -> tf.Tensor:
        w = weights[..., None]
        return images * (1 - w) + filled * w

    hot, cold = hottest(heat, share, region)
    return replace(hot), replace(cold)


def score(before: tf.Tensor, without_hot: tf.Tensor, without_cold: tf.Tensor, signed: bool = True) -> tf.Tensor:
    """The faithfulness of each map (N,) from the explained evidence before and after each deletion.
    signed (a class): (d_hot - d_cold) / max(|s|, |d_hot| + |d_cold|); else (a regression's value,
    which may move either way): (|d_hot| - |d_cold|) / max(|d_hot|, |d_cold|)."""
    hot, cold = before - without_hot, before - without_cold
    if not signed:
        hot, cold = tf.abs(hot), tf.abs(cold)
        return tf.math.divide_no_nan(hot - cold, tf.maximum(hot, cold))
    return tf.math.divide_no_nan(hot - cold, tf.maximum(tf.abs(before), tf.abs(hot) + tf.abs(cold)))


def measure(
    logits_of: Callable[[tf.Tensor], tf.Tensor],
    task: Task,
    parts: list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]],
    fill: Fill = blurred,
) -> list[tf.Tensor]:
    """The faithfulness of each part's maps (N,), a part being (model inputs (N, H, W, C), their maps
    (N, h, w), the logits of the inputs, what each map explains (N, ...): a class, or a FOMO object's
    mask): every deleted copy of every part through the model as one batch, deleted within the
    task's region of each target. logits_of: model inputs -> logits; fill: what a deleted region
    becomes (fill_for)."""
    copies = [
        c for inputs, maps, _, targets in parts for c in deleted(inputs, maps, region=task.region(targets), fill=fill)
    ]
    altered = logits_of(tf.concat(copies, axis=0))
    scored, start = [], 0
    for inputs, _, logits, classes in parts:
        n = tf.shape(inputs)[0]
        hot, cold = altered[start : start + n], altered[start + n : start + 2 * n]
        evidence = [task.evidence(x, classes) for x in (logits, hot, cold)]
        scored.append(score(*evidence, signed=task.signed))
        start += 2 * n
    return scored


def scorer(adapter: Forward) -> Callable[..., np.ndarray]:
    """Scores maps made by another pass (FOMO's objects, whose CAM pass starts above the pixels):
    (images, owners, raw maps, logits, targets) -> the faithfulness of each map, traced once."""
    specs = [
        tf.TensorSpec((None, *adapter.image_shape), tf.float32),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None, None, None), tf.float32),
        tf.TensorSpec((None, *adapter.output_shape), tf.float32),
        tf.TensorSpec((None, *adapter.output_shape), tf.float32),
    ]

    def run(images, owners, maps, logits, targets):
        part = (tf.gather(images, owners), maps, logits, targets)
        return measure(lambda x: adapter.untapped(x).scores, adapter.task, [part])[0]

    graph = traced(run, specs)
    return lambda *args: graph(*(tf.constant(a, s.dtype) for a, s in zip(args, specs, strict=True))).numpy()
