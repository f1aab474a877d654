"""The model adapter: load a Keras model, find the layer to explain, expose scores before softmax.

Edge Impulse writes Keras 2 `.h5` files; Keras 3 cannot load all of them (a MobileNetV2 nested in a
Sequential fails on BatchNormalization), so `.h5` goes through `tf_keras` first. The adapter never
changes the loaded model: it runs the same layers in a different order of evaluation, taps the
target layer's output on the way, and computes the last layer's scores with a linear twin of it.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from gradcam.errors import GradcamError

CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


def _keras_modules() -> list:
    import keras
    import tf_keras

    return [tf_keras, keras]


def _load_file(path: Path):
    loaders = _keras_modules() if path.suffix.lower() in (".h5", ".hdf5") else _keras_modules()[::-1]
    errors = []
    for module in loaders:
        try:
            return module.models.load_model(str(path), compile=False)
        except Exception as exc:
            errors.append(f"{module.__name__}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise GradcamError(f"{path}: cannot load the Keras model ({'; '.join(errors)})")


def load_model(path: str | Path):
    """Load a `.h5`, `.keras`, or a zip holding `model.h5` (Studio's download) without compiling it."""
    path = Path(path)
    if not path.is_file():
        raise GradcamError(f"{path}: model file not found")
    if path.suffix.lower() != ".zip":
        return _load_file(path)
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
            names = [n for n in archive.namelist() if n.lower().endswith((".h5", ".keras"))]
            if not names:
                raise GradcamError(f"{path}: the zip holds no model.h5 (found {', '.join(archive.namelist())})")
            name = "model.h5" if "model.h5" in names else names[0]
            target = Path(tmp) / Path(name).name
            target.write_bytes(archive.read(name))
            return _load_file(target)
    except zipfile.BadZipFile as exc:
        raise GradcamError(f"{path}: not a readable zip file ({exc})") from None


def _layers(model) -> list:
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _is_spatial(layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def _walk(model, prefix: tuple = ()) -> list[tuple]:
    """Every layer as a path (model's layer, nested layer, ...), depth first, in model order."""
    paths = []
    for layer in _layers(model):
        path = (*prefix, layer)
        paths.append(path)
        if _is_model(layer):
            paths.extend(_walk(layer, path))
    return paths


def path_name(path: tuple) -> str:
    return "/".join(layer.name for layer in path)


def find_target_layer(model, name: str | None = None) -> tuple:
    """The path to the layer to explain: `name` (a path `outer/inner` or a unique name), else the
    last convolution with a 2-D spatial output, searching nested models."""
    paths = _walk(model)
    if name:
        matches = [p for p in paths if path_name(p) == name] or [p for p in paths if p[-1].name == name]
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise GradcamError(
                f"layer {name!r}: {found} such layer in the model; layers: {', '.join(path_name(p) for p in paths)}"
            )
        if not _is_spatial(matches[0][-1]):
            raise GradcamError(f"layer {name!r} has no 2-D spatial output (shape {matches[0][-1].output.shape})")
        return matches[0]
    convs = [p for p in paths if type(p[-1]).__name__ in CONV_TYPES and _is_spatial(p[-1])]
    if not convs:
        described = ", ".join(f"{path_name(p)} ({type(p[-1]).__name__})" for p in paths)
        raise GradcamError(f"the model has no 2-D convolution layer to explain; its layers: {described}")
    return convs[-1]


def _framework(model):
    for module in _keras_modules():
        if isinstance(model, module.Model):
            return module
    raise GradcamError(f"not a Keras model: {type(model).__name__}")


def _tap(keras, model, path: tuple, drop_last: bool) -> Callable:
    """x -> (output of path[-1], output of `model`, or the input of its last layer if drop_last).

    A Sequential model is walked layer by layer (its layers' symbolic outputs may come from
    different builds once reloaded, so a sub-Model of them can be disconnected); a functional
    model is cut with a sub-Model of its own graph.
    """
    layers = _layers(model)
    child = path[0]
    if type(model).__name__ == "Sequential":
        inner = _tap(keras, child, path[1:], drop_last=False) if len(path) > 1 else None
        run_layers = layers[:-1] if drop_last else layers

        def run(x):
            activations = None
            for layer in run_layers:
                if layer is child and inner is not None:
                    activations, x = inner(x)
                else:
                    x = layer(x, training=False)
                    activations = x if layer is child else activations
            return activations, x

        return run
    if len(path) == 1:
        end = layers[-1].input if drop_last else model.outputs[0]
        tapped = keras.Model(model.inputs, [child.output, end])
        return lambda x: tapped(x, training=False)
    raise GradcamError(
        f"layer {path_name(path)!r} is nested inside {model.name!r}, which is not a Sequential model; "
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


def _image_shape(model, impulse_shape: tuple[int, int, int] | None) -> tuple[tuple[int, int, int], bool]:
    """(height, width, channels) the model sees, and whether its input is a flat vector."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) == 3 and None not in shape:
        return tuple(int(s) for s in shape), False
    if len(shape) == 1:
        first = _layers(model)[0]
        if type(first).__name__ == "Reshape" and len(first.target_shape) == 3:
            return tuple(int(s) for s in first.target_shape), True
        if impulse_shape and shape[0] == impulse_shape[0] * impulse_shape[1] * impulse_shape[2]:
            return impulse_shape, True
        raise GradcamError(
            f"the model takes a flat input of {shape[0]} values and does not reshape it; "
            "give the image size (the impulse's width, height and colour depth)"
        )
    if len(shape) == 3 and impulse_shape:
        return impulse_shape, False
    raise GradcamError(f"model input shape {shape} is not an image (expected height, width, channels)")


@dataclass(frozen=True)
class Scores:
    """One forward pass: the target layer's activations, scores before the final activation, probabilities."""

    activations: tf.Tensor
    scores: tf.Tensor
    probabilities: tf.Tensor


class ModelAdapter:
    """A Keras model seen as: image batch -> (activations of the target layer, scores, probabilities)."""

    def __init__(self, model, layer: str | None = None, impulse_shape: tuple[int, int, int] | None = None):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise GradcamError(
                f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                "only single-input, single-output image models can be explained"
            )
        keras = _framework(model)
        self.model = model
        self.target_path = find_target_layer(model, layer)
        self.layer_name = path_name(self.target_path)
        # Variables a gradient tape must watch so that every op from the target layer to the
        # output is recorded, even in frozen (non-trainable) layers.
        self.watched = [w if isinstance(w, tf.Variable) else w.value for w in self.target_path[-1].weights]
        self.image_shape, self.flat_input = _image_shape(model, impulse_shape)
        last = _layers(model)[-1]
        self.task, self._activation = self._task(last, int(model.outputs[0].shape[-1]))
        self._tap = _tap(keras, model, self.target_path, drop_last=True)
        self._head = _linear_twin(keras, last)

    @staticmethod
    def _task(last, outputs: int) -> tuple[str, Callable]:
        name = _activation_name(last)
        if name == "softmax":
            return "classification", tf.nn.softmax
        if name == "sigmoid" and outputs == 1:
            return "binary", tf.sigmoid
        if name == "linear" and outputs == 1:
            return "regression", tf.identity
        if name == "linear":
            return "classification", tf.nn.softmax
        raise GradcamError(
            f"the model's last layer {last.name!r} has activation {name!r} with {outputs} outputs; "
            "expected softmax (classification), one sigmoid (binary) or one linear output (regression)"
        )

    @property
    def num_outputs(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    def __call__(self, images: tf.Tensor) -> Scores:
        """images: (N, H, W, C) already preprocessed. Runs in inference mode."""
        x = tf.reshape(images, (tf.shape(images)[0], -1)) if self.flat_input else images
        activations, features = self._tap(x)
        scores = self._head(features)
        return Scores(activations, scores, self._activation(scores))
