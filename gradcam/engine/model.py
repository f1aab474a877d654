"""The model adapter: tap a Keras model's layers to explain, expose scores before softmax. Models are
loaded by gradcam.engine.formats (a TFLite model is explained through its twin, gradcam.engine.twin_model,
behind the same `Forward` interface). The adapter never changes the loaded model: it runs the same
layers in another order of evaluation, taps the target layers' outputs on the way, and computes the
last layer's scores with a linear twin of it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gradcam.engine.attribution import InputPath, input_layer
from gradcam.engine.layers import AUTO, Layer, children, choose, keras_candidates, last_conv, path_name
from gradcam.engine.tasks import Task, task_for
from gradcam.engine.traced import traced
from gradcam.errors import GradcamError


def keras_modules() -> list:
    """Keras 2 (tf_keras, which Edge Impulse's .h5 files need) first, then Keras 3."""
    import keras
    import tf_keras

    return [tf_keras, keras]


def _framework(model):
    for module in keras_modules():
        if isinstance(model, module.Model):
            return module
    raise GradcamError(f"not a Keras model: {type(model).__name__}")


def _tap(keras, model, paths: list[tuple], drop_last: bool) -> Callable:
    """x -> (outputs of the paths' layers, in the order of `paths`; output of `model`, or the input
    of its last layer if drop_last).

    A Sequential model is walked layer by layer (its layers' symbolic outputs may come from
    different builds once reloaded, so a sub-Model of them can be disconnected); a functional
    model is cut with a sub-Model of its own graph.
    """
    layers = children(model)
    if type(model).__name__ == "Sequential":
        plan = []
        for layer in layers[:-1] if drop_last else layers:
            own = [i for i, p in enumerate(paths) if p == (layer,)]
            nested = [i for i, p in enumerate(paths) if len(p) > 1 and p[0] is layer]
            inner = _tap(keras, layer, [paths[i][1:] for i in nested], drop_last=False) if nested else None
            plan.append((layer, own, nested, inner))

        def run(x):
            found = [None] * len(paths)
            for layer, own, nested, inner in plan:
                if inner is None:
                    x = layer(x, training=False)
                else:
                    activations, x = inner(x)
                    for i, a in zip(nested, activations, strict=True):
                        found[i] = a
                for i in own:
                    found[i] = x
            return found, x

        return run
    if all(len(p) == 1 for p in paths):
        end = layers[-1].input if drop_last else model.outputs[0]
        tapped = keras.Model(model.inputs, [*(p[0].output for p in paths), end])

        def run_functional(x):
            *activations, out = tapped(x, training=False)
            return activations, out

        return run_functional
    nested = next(p for p in paths if len(p) > 1)
    raise GradcamError(
        f"layer {path_name(nested)!r} is nested inside {model.name!r}, which is not a Sequential model; "
        "choose a top-level layer with --layer"
    )


def _activation_name(layer) -> str:
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    if kind == "Activation" or hasattr(layer, "activation"):
        return getattr(layer.activation, "__name__", str(layer.activation))
    return "linear"


def _linear_twin(keras, layer):
    """A copy of `layer` without its activation, with the same weights: the scores before it."""
    if type(layer).__name__ in ("Activation", "Softmax"):
        return lambda x: x
    config = dict(layer.get_config(), activation="linear")
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return twin


# Layers that pass their input through unchanged at inference: Edge Impulse's audio models start with
# GaussianNoise (data augmentation) before their Reshape.
_INFERENCE_IDENTITY = ("GaussianNoise", "GaussianDropout", "Dropout", "InputLayer")


def input_image_shape(model, impulse_shape: tuple[int, int, int] | None) -> tuple[tuple[int, int, int], bool]:
    """(height, width, channels) the model sees, and whether its input is a flat vector. Audio
    models reshape their flat features to (frames, columns): seen as (frames, columns, 1)."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) == 3 and None not in shape:
        return tuple(int(s) for s in shape), False
    if len(shape) == 1:
        first = next(layer for layer in children(model) if type(layer).__name__ not in _INFERENCE_IDENTITY)
        target = tuple(int(s) for s in first.target_shape) if type(first).__name__ == "Reshape" else None
        return flat_input_shape(int(shape[0]), target, impulse_shape), True
    if len(shape) == 3 and impulse_shape:
        return impulse_shape, False
    raise GradcamError(f"model input shape {shape} is not an image (expected height, width, channels)")


def flat_input_shape(
    values: int, target: tuple[int, ...] | None, impulse_shape: tuple[int, int, int] | None
) -> tuple[int, int, int]:
    """What a flat input of `values` is seen as, from the target of the Reshape that first takes
    it (None: none does): an image's (height, width, channels), or features' (frames, columns) as
    (frames, columns, 1); without one, the impulse's image size."""
    if target is not None and len(target) in (2, 3):
        return (*target, 1) if len(target) == 2 else target
    if impulse_shape and values == math.prod(impulse_shape):
        return impulse_shape
    raise GradcamError(
        f"the model takes a flat input of {values} values and does not reshape it; "
        "give the image size (the impulse's width, height and colour depth)"
    )


def has_grid_output(model) -> bool:
    """Whether the model answers per cell of a grid (h, w, classes), as FOMO does."""
    return len(model.outputs[0].shape) == 4


@dataclass(frozen=True)
class Scores:
    """One forward pass: the target layers' activations, scores before the final activation, probabilities."""

    activations: list[tf.Tensor]
    scores: tf.Tensor
    probabilities: tf.Tensor


class Forward:
    """A batch -> (activations of the target layers, scores, probabilities): what a CAM pass runs."""

    image_shape: tuple[int, int, int]  # one input's (height, width, channels)
    task: Task
    output_shape: tuple[int, ...]  # one sample's output
    path: InputPath | None = None  # a model explained at its input (no convolution): its attribution path
    _predict = _logits = None

    def __call__(self, inputs: tf.Tensor) -> Scores:
        raise NotImplementedError

    def untapped(self, inputs: tf.Tensor) -> Scores:
        """A pass for the scores and probabilities alone (the faithfulness passes, predict): no
        gradient will be asked of it. The same pass here; a TFLite twin skips its real-valued path."""
        return self(inputs)

    def _explain_input(self, values: int, logits: Callable[[tf.Tensor], tf.Tensor]) -> None:
        """Be explained at the input (a model without convolutions): a flat vector of `values` seen as
        `values x 1`, its attribution path over `logits` (flat inputs -> scores before the activation)."""
        self.image_shape, self.flat_input = (values, 1, 1), True
        self.last_conv, self.layers = None, [input_layer(values)]
        self.path = InputPath(logits, values, self.task)

    def _attributed(self, inputs: tf.Tensor) -> Scores:
        """The pass of a model explained at its input: the inputs' differences from the baseline as the
        activations, and the scores along the attribution path."""
        activations, scores = self.path(tf.reshape(inputs, (-1, self.image_shape[0])))
        return Scores([activations], scores, self.task.activation(scores))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The model's outputs (after its activation) for a batch: forward only."""
        if self._predict is None:
            self._predict = self._forward(lambda x: self.untapped(x).probabilities)
        return self._predict(tf.constant(inputs, tf.float32)).numpy()

    def logits(self, inputs: np.ndarray) -> np.ndarray:  # scores before the final activation, on the model that runs
        return self.run(self.encode(inputs))

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs as `run` takes them (a TFLite model's quantized once, for its hidden copies)."""
        return inputs

    def run(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded inputs -> the scores before the final activation."""
        if self._logits is None:
            self._logits = self._forward(lambda x: self.untapped(x).scores)
        return self._logits(tf.constant(encoded, tf.float32)).numpy()

    def _forward(self, pass_: Callable[[tf.Tensor], tf.Tensor]) -> Callable:  # a forward pass, traced
        return traced(pass_, [tf.TensorSpec((None, *self.image_shape), tf.float32)])


class ModelAdapter(Forward):
    """A Keras model seen as: image batch -> (activations of the target layers, scores, probabilities).

    layer: `auto` (None), `last-conv`, or layer names to fuse, `a,b,c` (see gradcam.engine.layers).
    A model without a layer of spatial output whose input is a flat vector (a Dense classifier on DSP
    features) is explained at its input (gradcam.engine.attribution), seen as `values x 1`.
    """

    def __init__(self, model, layer: str = "auto", impulse_shape: tuple[int, int, int] | None = None):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise GradcamError(
                f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                "only single-input, single-output image models can be explained"
            )
        keras = _framework(model)
        self.model = model
        self.candidates = keras_candidates(model)
        grid = has_grid_output(model)
        last = children(model)[-1]
        self.task: Task = task_for(_activation_name(last), self.num_outputs, last.name, grid)
        self._head = _linear_twin(keras, last)
        values = model.inputs[0].shape[1:]
        if not self.candidates.layers and len(values) == 1 and (layer or AUTO) == AUTO:
            self._tap = _tap(keras, model, [], drop_last=True)
            self._explain_input(int(values[0]), lambda x: self._head(self._tap(x)[1]))
            return
        self.last_conv: Layer | None = last_conv(self.candidates.layers)
        self.image_shape, self.flat_input = input_image_shape(model, impulse_shape)
        self.layers: list[Layer] = choose(self.candidates, layer, self.image_shape[0], dense=grid)
        self._tap = _tap(keras, model, [layer.path for layer in self.layers], drop_last=True)

    @property
    def layer_name(self) -> str:
        """The explained layers, deepest first, joined with `,` (what --layer takes)."""
        return ",".join(layer.name for layer in self.layers)

    @property
    def num_outputs(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @property
    def output_shape(self) -> tuple[int, ...]:
        """One sample's output: (outputs,), or (h, w, outputs) for a grid (FOMO)."""
        return tuple(int(d) for d in self.model.outputs[0].shape[1:])

    def cut(self) -> Above | None:
        """The model cut at its shallowest explained layer, when its graph allows (a functional
        model whose explained layers are its own, and no branch crosses the cut); else None."""
        try:
            return Above(self)
        except (ValueError, AttributeError, TypeError, GradcamError):
            return None

    def __call__(self, images: tf.Tensor) -> Scores:
        """images: (N, H, W, C) already preprocessed. Runs in inference mode."""
        if self.path is not None:
            return self._attributed(images)
        x = (
            tf.reshape(images, (-1, int(np.prod(self.image_shape)))) if self.flat_input else images
        )  # an empty batch too
        activations, features = self._tap(x)
        scores = self._head(features)
        return Scores(activations, scores, self.task.activation(scores))


class Above(Forward):
    """The model from its shallowest explained layer on: its input is that layer's output, so that
    several targets of one image (FOMO's objects) share the costly high-resolution layers below it,
    run once per image by `below`."""

    def __init__(self, adapter: ModelAdapter):
        keras, model = _framework(adapter.model), adapter.model
        if type(model).__name__ == "Sequential" or any(len(layer.path) > 1 for layer in adapter.layers):
            raise GradcamError("only a functional model's own layers can be cut")
        start = adapter.layers[-1].path[0].output
        self.below = keras.Model(model.inputs, start)
        above = [layer.path[0].output for layer in adapter.layers[:-1]]  # the input is the last tap
        self._tap = keras.Model(start, [*above, children(model)[-1].input])
        self._head = adapter._head
        self.image_shape = tuple(int(d) for d in start.shape[1:])
        self.task, self.output_shape = adapter.task, adapter.output_shape
        spec = tf.TensorSpec((None, *adapter.image_shape), tf.float32)
        self._below = traced(lambda x: self.below(x, training=False), [spec])

    def start(self, images: np.ndarray) -> np.ndarray:
        """The shallowest explained layer's output for a batch of model inputs."""
        return self._below(tf.constant(images, tf.float32)).numpy()

    def __call__(self, inputs: tf.Tensor) -> Scores:
        """inputs: the shallowest explained layer's output."""
        *activations, features = self._tap(inputs, training=False)
        scores = self._head(features)
        return Scores([*activations, inputs], scores, self.task.activation(scores))
