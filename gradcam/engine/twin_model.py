"""A TFLite model seen as the Keras adapter sees a Keras model: image batch -> (activations of the
target layers, scores before the final softmax or sigmoid, the model's outputs), from its twin.

Its layers are its operators' outputs, named as in the file: the first name a converter gave the
tensor, without its last part (`model_1/block_6_expand_relu/Relu6;...` -> `model_1/block_6_expand_relu`),
numbered where two share one. A 1-D model's (Conv1D becomes CONV_2D on a row of 1 x frames) are
seen as frames x 1, as the Keras adapter sees them. `--layer auto` picks by resolution as on Keras.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from gradcam.engine.layers import AUTO, Candidates, Layer, Node, choose, last_conv
from gradcam.engine.model import Forward, Scores, flat_input_shape
from gradcam.engine.tasks import Task, task_for
from gradcam.engine.tflite_graph import Graph, Operator
from gradcam.engine.twin import FINAL, LAYOUT, Run, Twin
from gradcam.errors import GradcamError

KINDS = {
    "CONV_2D": "Conv2D",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
    "PAD": "ZeroPadding2D",
    "MAX_POOL_2D": "MaxPooling2D",
    "AVERAGE_POOL_2D": "AveragePooling2D",
    "ADD": "Add",
    "MUL": "Multiply",
    "CONCATENATION": "Concatenate",
    "SOFTMAX": "Softmax",
}
_ACT = schema.ActivationFunctionType
ACTIVATION_KINDS = {_ACT.RELU: "ReLU", _ACT.RELU_N1_TO_1: "ReLU", _ACT.RELU6: "ReLU", _ACT.TANH: "Activation"}


def _scope(part: str) -> str:
    return part.rsplit("/", 1)[0] if "/" in part else part


def _short(name: str) -> str:
    return _scope(name.split(";")[0])


def _one_by_one(graph: Graph, op: Operator) -> bool:
    if op.op != "CONV_2D":
        return False
    _out, kh, kw, _in = graph.tensors[op.inputs[1]].shape
    return (kh, kw) == (1, 1)


def _nodes(graph: Graph, op: Operator) -> list[tuple[Node, bool]]:
    """The layers an operator stands for, as (node, before its fused activation?). An operator
    that fused the activation of a Keras layer of its own (its tensor's names have two scopes:
    `model/block_1_expand_relu/Relu6;model/block_1_expand_BN/...`) stands for two, the
    convolution and the activation after it, as in Keras; otherwise for one.

    Pointwise (a FOMO head's layers, see gradcam.engine.layers.before_head): a softmax, a 1x1
    convolution, and the activation of one that does not end in ReLU6. (A MobileNet block's 1x1
    convolutions end in ReLU6: in Keras, separate BatchNormalization and ReLU layers, where the
    head stops.)"""
    names = graph.tensors[op.outputs[0]].name.split(";")
    kind = KINDS.get(op.op, op.op)
    fused = getattr(op.options, "fusedActivationFunction", _ACT.NONE)
    one, relu6 = _one_by_one(graph, op), fused == _ACT.RELU6
    if fused and len(names) > 1 and _scope(names[0]) != _scope(names[1]):
        activation = ACTIVATION_KINDS.get(fused, "Activation")
        return [
            (Node(_scope(names[1]), kind, one), True),
            (Node(_scope(names[0]), activation, one and not relu6), False),
        ]
    name = _scope(names[0]) or f"{op.op.lower()}_{op.index}"
    return [(Node(name, kind, op.op in FINAL or (one and not relu6)), False)]


def _input(graph: Graph, impulse_shape) -> tuple[tuple[int, int, int], bool, bool]:
    """(height, width, channels) the model sees, whether its input is flat, and whether it is 1-D
    (features: frames x columns, seen as (frames, columns, 1))."""
    shape = graph.tensors[graph.input].shape[1:]
    if len(shape) == 3:
        return tuple(shape), False, False
    if len(shape) != 1:
        raise GradcamError(f"{graph.path}: input shape {list(shape)} is not an image or a feature vector")
    reshape = next((op for op in graph.consumers(graph.input) if op.op in ("RESHAPE", "EXPAND_DIMS")), None)
    target = graph.tensors[reshape.outputs[0]].shape[1:] if reshape else None
    one_d = target is not None and (len(target) == 2 or (len(target) == 3 and target[0] == 1))
    if one_d:
        target = target[-2:]  # (frames, columns), or one row of them
    try:
        return flat_input_shape(shape[0], target, impulse_shape), True, one_d
    except GradcamError as exc:
        raise GradcamError(f"{graph.path}: {exc}") from None


def _candidates(graph: Graph, one_d: bool) -> tuple[Candidates, dict]:
    """The operators with a spatial output, as layers; and each layer's (tensor, before activation?)."""
    layers, tensors, seen = [], {}, {}
    for op in graph.operators:
        shape = graph.tensors[op.outputs[0]].shape
        if op.op in LAYOUT or len(shape) != 4 or shape[0] != 1:
            continue
        _, h, w, c = shape
        if one_d and 1 in (h, w):
            h, w = h * w, 1
        for node, before in _nodes(graph, op):
            seen[node.name] = seen.get(node.name, 0) + 1
            if seen[node.name] > 1:
                node = Node(f"{node.name}#{seen[node.name]}", node.kind, node.pointwise)
            layer = Layer((node,), h, w, c)
            layers.append(layer)
            tensors[layer.path] = (op.outputs[0], before)
    return Candidates(layers, [layer.path for layer in layers]), tensors


def _final(graph: Graph) -> tuple[str, int]:
    """The model's final activation (softmax, sigmoid or linear) and the tensor of its scores."""
    tensor = graph.output
    while (op := graph.producer(tensor)) is not None and op.op in LAYOUT:
        tensor = op.inputs[0]
    if op is not None and op.op in FINAL:
        return FINAL[op.op], op.inputs[0]
    return "linear", graph.output


class TwinAdapter(Forward):
    """A TFLite model seen as: image batch -> (activations of the target layers, scores, outputs)."""

    _scores_model = None  # LiteRT on the file, up to its scores (`run`)

    def __init__(self, graph: Graph, layer: str = AUTO, impulse_shape: tuple[int, int, int] | None = None):
        self.graph = graph
        self.twin = Twin(graph)
        self.output_shape = tuple(graph.tensors[graph.output].shape[1:])
        grid = len(self.output_shape) == 3
        activation, self._scores = _final(graph)
        self.task: Task = task_for(activation, self.num_outputs, _short(graph.tensors[graph.output].name), grid)
        shape = graph.tensors[graph.input].shape[1:]
        spatial = any(len(graph.tensors[op.outputs[0]].shape) == 4 for op in graph.operators)
        if not spatial and len(shape) == 1 and layer == AUTO:  # a Dense model: explained at its input
            self.candidates, self._tensors, self._one_d = Candidates([], []), {}, False
            # The real-valued path from the input on: gradients reach it (gradcam.engine.twin).
            through = frozenset({graph.input})
            self._explain_input(int(shape[0]), lambda x: self._outputs(self.twin(x, through))[0])
            return
        self.image_shape, self.flat_input, self._one_d = _input(graph, impulse_shape)
        self.candidates, self._tensors = _candidates(graph, self._one_d)
        self.last_conv: Layer | None = last_conv(self.candidates.layers)
        self.layers: list[Layer] = choose(self.candidates, layer, self.image_shape[0], dense=grid)

    @property
    def kind(self) -> str:
        """The input type: int8, uint8 or float32."""
        return np.dtype(self.graph.tensors[self.graph.input].dtype).name

    @property
    def layer_name(self) -> str:
        return ",".join(layer.name for layer in self.layers)

    @property
    def num_outputs(self) -> int:
        return int(self.output_shape[-1])

    def cut(self) -> None:
        """The twin is not cut: FOMO's objects each run the whole graph."""
        return None

    def _view(self, value: tf.Tensor) -> tf.Tensor:
        _, h, w, c = value.shape
        return tf.reshape(value, (-1, h * w, c))  # a row or column of frames: (frames, channels)

    def __call__(self, images: tf.Tensor) -> Scores:
        """images: (N, H, W, C) already preprocessed, as the Keras model takes them."""
        if self.path is not None:
            return self._attributed(images)
        taps = [self._tensors[layer.path] for layer in self.layers]
        after = frozenset(t for t, before in taps if not before)
        run = self.twin(
            images, after, frozenset(t for t, before in taps if before), self._view if self._one_d else None
        )
        activations = [(run.before_activation if before else run.kept)[t] for t, before in taps]
        return Scores(activations, *self._outputs(run))

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs as LiteRT's input tensor holds them (quantized, for an int8 model)."""
        return self._litert().quantize(inputs)

    def run(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded inputs -> the scores before the final activation, as LiteRT computes them (the
        model's own evidence): the file run up to the final activation's input."""
        return self._litert().run(encoded).reshape(len(encoded), *self.output_shape)

    def _litert(self):
        if self._scores_model is None:
            from gradcam.engine.tflite import TfliteModel

            end = None if self._scores == self.graph.output else self._scores
            self._scores_model = TfliteModel.of(self.graph, end)
        return self._scores_model

    def untapped(self, images: tf.Tensor) -> Scores:
        """The scores and outputs alone: int8 kernels' values without the real-valued path."""
        return Scores([], *self._outputs(self.twin(images)))

    def _outputs(self, run: Run) -> tuple[tf.Tensor, tf.Tensor]:
        """(scores, outputs) of a run, each sample's in the output's shape."""
        shape = (-1, *self.output_shape)
        return tf.reshape(run.values[self._scores], shape), tf.reshape(run.output, shape)
