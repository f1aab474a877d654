"""Batched class activation maps. `BaseCAM` holds the shared pass; each method supplies its weights.

For a batch, one traced function runs the model once in inference mode, takes the target score
y^c before softmax/sigmoid, and differentiates it with respect to the target layers' feature maps
A^k. Each method turns (A, dy/dA) into weights w; a layer's map is ReLU(sum_k w_k * A^k).
Samples do not interact in inference mode, so the gradient of the batch's summed score gives
every sample its own gradient. A target is what the task explains (a class index; for FOMO, a
mask over the output grid: one object); several targets may explain one image (`owners`): the
image is then repeated inside the pass, one copy per target, so that one backward pass serves all.
A map may also say which class is true (`truths`): where the model's answer misses it, the same
pass explains the true class too, running only those images once more, so that a mistake shows
where the model looked for the class it should have seen: its *contrast* map.

With several layers (the default on models whose last convolution is coarse, see gradcam.engine.layers)
the deepest layer is explained with the chosen method, the finer ones with LayerCAM (Jiang et al.
2021), and the maps are fused by multiplication, each scaled to 0..1 and upsampled to the finest:
a place is hot only where the class-specific deep map and the sharp shallow maps agree. Measured
on the MobileNetV2 96x96 test fixture (120 images, true class; pointing / heat in the box): the
product 0.90 / 0.66, the mean 0.93 / 0.23, the maximum 0.58 / 0.20, the deepest layer alone
0.56 / 0.23: a sum or a maximum keeps every layer's stray heat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gradcam.choices import INPUT_METHODS, POOLINGS
from gradcam.engine import faithfulness
from gradcam.engine.attribution import AUTO_INPUT
from gradcam.engine.model import ModelAdapter
from gradcam.engine.tasks import PREDICTED
from gradcam.engine.traced import traced
from gradcam.errors import GradcamError, check_choice


@dataclass(frozen=True)
class CamBatch:
    """Raw maps (N, h, w), one per target, and the model's outputs for them; the contrast maps
    (M, h, w), the true class's map of each of the M targets whose image the model got wrong, and
    those targets' indices (M,); with faithfulness on, each map's score (N,) and each contrast
    map's (M,) (gradcam.engine.faithfulness), else empty."""

    maps: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray
    contrasts: np.ndarray
    mistakes: np.ndarray
    faithfulness: np.ndarray
    contrast_faithfulness: np.ndarray

    def contrast(self, i: int) -> tuple[np.ndarray, float | None] | None:
        """The contrast map of target i (its true class's, if the model got its image wrong) and its
        faithfulness (None: not measured); None when there is none."""
        found = np.flatnonzero(self.mistakes == i)
        if not len(found):
            return None
        scores = self.contrast_faithfulness
        return self.contrasts[found[0]], float(scores[found[0]]) if len(scores) else None


class BaseCAM:
    """The shared pass: activations, gradients of the target score, the (fused) map."""

    def __init__(
        self,
        adapter: ModelAdapter,
        pooling: str = "mean",
        faithfulness: bool = False,
        fill: faithfulness.Fill = faithfulness.blurred,
    ):
        """faithfulness: score every map in the same pass (a task with one answer per sample only);
        fill: what its deletions replace a region with (gradcam.engine.faithfulness.fill_for)."""
        check_choice("pooling", pooling, POOLINGS)
        self.adapter = adapter
        self.pooling = pooling
        self.faithfulness, self.fill = faithfulness, fill
        height, width, channels = adapter.image_shape
        signature = [
            tf.TensorSpec((None, height, width, channels), tf.float32),
            tf.TensorSpec((None,), tf.int32),
            adapter.task.target_spec(adapter.output_shape),
        ]
        # Traced at their first call: the pass with the contrast maps holds the model twice,
        # so it is traced only once some image comes with a true class.
        self._pass = traced(lambda *args: self._batch_pass(*args), signature)
        self._contrast_pass = traced(self._batch_pass, [*signature, signature[1]])

    def weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        """One weight per channel (N, K), or per position and channel (N, h, w, K)."""
        raise NotImplementedError

    def _layer_map(self, depth: int, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        """ReLU(sum_k w_k A^k) for one layer: the method's weights at the deepest, LayerCAM's below."""
        if activations.shape.rank == 3:  # a 1-D layer (frames, channels): a map of frames x 1
            activations, grads = activations[:, :, None], grads[:, :, None]
        weights = self.weights(activations, grads) if depth == 0 else _layercam_weights(grads)
        if weights.shape.rank == 2:  # sum_k w_k A^k as a batched matrix-vector product
            return tf.nn.relu(tf.einsum("nhwk,nk->nhw", activations, weights))
        return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))

    def maps_of(self, activations: list[tf.Tensor], grads: list[tf.Tensor]) -> tf.Tensor:
        """Each target's map from its layers' activations and gradients, deepest first (fused)."""
        return fuse([self._layer_map(i, a, g) for i, (a, g) in enumerate(zip(activations, grads, strict=True))])

    def _scored(self, parts: list[tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]]) -> list[tf.Tensor]:
        """The faithfulness of each part's maps, parts being (inputs, maps, scores, explained classes):
        every deleted copy of every part through the model as one batch."""
        if not self.faithfulness:
            return [tf.zeros((0,)) for _ in parts]
        return faithfulness.measure(lambda x: self.adapter.untapped(x).scores, self.adapter.task, parts, self.fill)

    def _batch_pass(self, images: tf.Tensor, owners: tf.Tensor, targets: tf.Tensor, truths: tf.Tensor | None = None):
        task = self.adapter.task
        contrast = truths is not None
        inputs = tf.gather(images, owners)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            # Watching the input records every op after it, so any layer can be a target, even
            # one without weights (an activation, an Add), and frozen layers too.
            tape.watch(inputs)
            out = self.adapter(inputs)
            y = task.target(out.scores, targets)  # y^c per map, before the activation
            if contrast:  # the mistakes again, explained for their true class
                mistakes = tf.cast(tf.where(task.mistaken(out.scores, truths))[:, 0], tf.int32)
                rows = _padded(mistakes)
                again_inputs = tf.gather(inputs, rows)
                again = self.adapter(again_inputs)
                y_true = task.target(again.scores, tf.gather(truths, rows))
        if not contrast:
            maps = self.maps_of(out.activations, tape.gradient(y, out.activations))
            [scored] = self._scored([(inputs, maps, out.scores, self._explained(out.scores, targets))])
            return maps, out.scores, out.probabilities, maps[:0], tf.zeros((0,), tf.int32), scored, scored[:0]
        grads, true_grads = tape.gradient([y, y_true], [out.activations, again.activations])
        maps, contrasts = self.maps_of(out.activations, grads), self.maps_of(again.activations, true_grads)
        scored, contrast_scored = self._scored(
            [
                (inputs, maps, out.scores, self._explained(out.scores, targets)),
                (again_inputs, contrasts, again.scores, self._explained(again.scores, tf.gather(truths, rows))),
            ]
        )
        count = tf.size(mistakes)
        return maps, out.scores, out.probabilities, contrasts[:count], mistakes, scored, contrast_scored[:count]

    def _explained(self, scores: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The class each map explains, where faithfulness is measured: its target, or the prediction
        (for -1: a row that pads the contrast maps' batch)."""
        if not self.faithfulness:
            return targets
        return tf.where(targets >= 0, targets, self.adapter.task.predicted(scores))

    def __call__(
        self,
        images: np.ndarray,
        targets: np.ndarray | None = None,
        owners: np.ndarray | None = None,
        truths: np.ndarray | None = None,
    ) -> CamBatch:
        """images: (N, H, W, C) preprocessed; one map per target: a class index (PREDICTED for the
        prediction) or the task's target (a FOMO object's mask); owners: the image of each target
        (default: target i explains image i); truths: the true class of each target's image (-1:
        none), whose map a mistake gets too: its contrast map."""
        if targets is None:
            targets = np.full(len(images), PREDICTED, dtype=np.int32)
        if owners is None:
            owners = np.arange(len(targets), dtype=np.int32)
        dtype = self._pass.input_signature[2].dtype
        args = [tf.constant(images, tf.float32), tf.constant(owners, tf.int32), tf.constant(targets, dtype)]
        if truths is not None and (np.asarray(truths) >= 0).any():
            outputs = self._contrast_pass(*args, tf.constant(truths, tf.int32))
        else:
            outputs = self._pass(*args)
        return CamBatch(*(t.numpy() for t in outputs))


def _padded(rows: tf.Tensor) -> tf.Tensor:
    """The rows, padded with row 0 to a power of two (at least 1): TensorFlow's fused CPU convolutions
    fail on an empty batch, and each new batch size costs a new oneDNN plan (measured: the job at
    a third of its speed when every batch had its own number of mistakes)."""
    count = tf.maximum(tf.size(rows), 1)
    size = tf.cast(2.0 ** tf.math.ceil(tf.math.log(tf.cast(count, tf.float32)) / tf.math.log(2.0) - 1e-4), tf.int32)
    return tf.concat([rows, tf.zeros([size - tf.size(rows)], tf.int32)], axis=0)


def fuse(maps: list[tf.Tensor]) -> tf.Tensor:
    """One map: the product of the maps, each scaled to a maximum of 1 and upsampled to the finest.
    A single map is returned as it is."""
    if len(maps) == 1:
        return maps[0]
    height = max(int(m.shape[1]) for m in maps)
    width = max(int(m.shape[2]) for m in maps)
    fused = None
    for m in maps:
        top = tf.reduce_max(m, axis=(1, 2), keepdims=True)
        scaled = tf.math.divide_no_nan(m, top)[..., None]
        upsampled = tf.image.resize(scaled, (height, width), method="bilinear")[..., 0]
        fused = upsampled if fused is None else fused * upsampled
    return fused


def _spatial_sum(x: tf.Tensor, keepdims: bool = False) -> tf.Tensor:
    return tf.reduce_sum(x, axis=(1, 2), keepdims=keepdims)


class GradCAM(BaseCAM):
    """Selvaraju et al.: w_k = mean_ij dy/dA^k_ij (or sum_ij |dy/dA^k_ij| with pooling sum_abs)."""

    def weights(self, activations, grads):
        if self.pooling == "sum_abs":
            return _spatial_sum(tf.abs(grads))
        return tf.reduce_mean(grads, axis=(1, 2))


class GradCAMPlusPlus(BaseCAM):
    """Chattopadhyay et al.: w_k = sum_ij a_ij^k ReLU(g_ij^k), a = g^2 / (2 g^2 + sum_ab A_ab g^3)."""

    def weights(self, activations, grads):
        g2 = tf.square(grads)
        denominator = 2.0 * g2 + _spatial_sum(activations, keepdims=True) * g2 * grads
        alpha = g2 / tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
        return _spatial_sum(alpha * tf.nn.relu(grads))


class HiResCAM(BaseCAM):
    """Draelos & Carin: the gradient itself, element by element (faithful to the score)."""

    def weights(self, activations, grads):
        return grads


def _layercam_weights(grads: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu(grads)


class LayerCAM(BaseCAM):
    """Jiang et al.: the positive part of the gradient, element by element."""

    def weights(self, activations, grads):
        return _layercam_weights(grads)


class InputAttribution(HiResCAM):
    """Integrated or Expected Gradients, or gradient x input, on a model explained at its input
    (gradcam.engine.attribution): HiResCAM's element-wise product of each feature's presence and the
    attribution its adapter gives as that presence's gradient, kept signed: a feature may weigh against
    the class, and a group of features weighs what its features' attributions add up to."""

    def _layer_map(self, depth: int, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(grads * activations, axis=-1)[..., None]  # (N, values, 1)


METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM, "layercam": LayerCAM}
METHODS.update(dict.fromkeys(INPUT_METHODS, InputAttribution))


def layer_methods(method: str, layers: int) -> list[str]:
    """The method each explained layer gets, deepest first: `method`, then LayerCAM below it."""
    return [method] + ["layercam"] * (layers - 1)


def auto_method(features: bool, two_d: bool, cepstra: bool = False, inputs: bool = False) -> str:
    """The method `auto` stands for, measured on the audio fixture family (bench/audio_methods.py,
    docs/audio.md): HiResCAM for a features model's map over time and frequency, whose head weighs each
    position apart: Grad-CAM's gradients, averaged over the whole map, lose where (a 2-D model on MFE:
    0% of peaks in the keyword's frames, HiResCAM 100%). Grad-CAM everywhere else: images; maps along
    time alone, where it has the highest faithfulness and the lowest re-initialised share on every
    member; and maps over cepstra (MFCC), whose columns are not places. inputs: a model explained at
    its input features (no convolution): Expected Gradients (gradcam.engine.attribution)."""
    if inputs:
        return AUTO_INPUT
    return "hirescam" if features and two_d and not cepstra else "gradcam"


def make_cam(
    adapter: ModelAdapter,
    method: str = "gradcam",
    pooling: str = "mean",
    faithfulness: bool = False,
    fill: faithfulness.Fill = faithfulness.blurred,
) -> BaseCAM:
    check_choice("method", method, METHODS)
    if (adapter.path is None) == (method in INPUT_METHODS):
        if adapter.path is None:
            raise GradcamError(f"method {method!r} explains the input features of a model without convolutions")
        raise GradcamError(
            f"method {method!r}: this model has no convolution; its input features are explained with "
            f"{' or '.join(INPUT_METHODS)} (or auto)"
        )
    if adapter.path is not None:
        adapter.path.method = method
    return METHODS[method](adapter, pooling, faithfulness, fill)
