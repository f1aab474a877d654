"""A differentiable twin of a TFLite model: the file's own arithmetic in TensorFlow ops, so that
Grad-CAM, faithfulness, contrast maps, FOMO's objects and audio windows explain the model that
ships (int8 or float32) with the same code as a Keras model.

Every operator runs in float on real values: weights and biases dequantized with their own (per
channel) scales, and every quantized tensor the operator writes fake-quantized to that tensor's
own scale and zero point, (clip(round(x / s) + z) - z) * s, so the twin holds the values the int8
kernels hold. The rounding's gradient is passed straight through (Bengio et al. 2013); clipping to
a fused ReLU or ReLU6 keeps its true gradient (zero outside). The job runs LiteRT beside the twin
on every sample and trusts a twin's map only where their outputs match (gradcam.engine.tflite).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from gradcam.engine.requantize import ACCUMULATING, Integers, exact
from gradcam.engine.tflite_graph import Graph, Operator, Tensor
from gradcam.errors import GradcamError

_ACT = schema.ActivationFunctionType
FUSED: dict[int, Callable[[tf.Tensor], tf.Tensor]] = {
    _ACT.NONE: lambda x: x,
    _ACT.RELU: tf.nn.relu,
    _ACT.RELU6: tf.nn.relu6,
    _ACT.RELU_N1_TO_1: lambda x: tf.clip_by_value(x, -1.0, 1.0),
    _ACT.TANH: tf.tanh,
}
# Operators that only move values (their output is the same numbers in another layout).
LAYOUT = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE")

FINAL = {"SOFTMAX": "softmax", "LOGISTIC": "sigmoid"}


def fake_quant(x: tf.Tensor, tensor: Tensor) -> tf.Tensor:
    """x rounded to the tensor's own int grid and clipped to its type's range, with the rounding's
    gradient passed straight through. Per-tensor scales only: activations have one."""
    if not tensor.quantized:
        return x
    info = np.iinfo(tensor.dtype)
    scale, zero = float(tensor.scale[0]), float(tensor.zero_point[0])
    q = tf.clip_by_value(tf.round(x / scale) + zero, float(info.min), float(info.max))
    return x + tf.stop_gradient((q - zero) * scale - x)


def _padding(options) -> str:
    return "SAME" if options.padding == schema.Padding.SAME else "VALID"


def _fused(options) -> Callable[[tf.Tensor], tf.Tensor]:
    code = getattr(options, "fusedActivationFunction", _ACT.NONE)
    if code not in FUSED:
        raise GradcamError(f"fused activation {code} is not supported")
    return FUSED[code]


def _batched(x: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
    """x reshaped to a tensor's shape, its first dimension left to the batch."""
    return tf.reshape(x, [-1, *shape[1:]])


class _Ops:
    """One method per supported operator: (twin, operator, its inputs' real values) -> its output
    before the operator's fused activation (the run applies that, then the output's quantization)."""

    @staticmethod
    def CONV_2D(g: Twin, op: Operator, x):
        o, kernel = op.options, g.constant(op.inputs[1])
        y = tf.nn.conv2d(
            x[0],
            tf.transpose(kernel, (1, 2, 3, 0)),
            (o.strideH, o.strideW),
            _padding(o),
            dilations=(o.dilationHFactor, o.dilationWFactor),
        )
        return g.bias(op, y)

    @staticmethod
    def DEPTHWISE_CONV_2D(g: Twin, op: Operator, x):
        o, kernel = op.options, g.constant(op.inputs[1])
        channels = int(x[0].shape[-1])
        _one, kh, kw, out = kernel.shape
        kernel = tf.reshape(kernel, (kh, kw, channels, out // channels))
        strides = (1, o.strideH, o.strideW, 1)
        y = tf.nn.depthwise_conv2d(x[0], kernel, strides, _padding(o), dilations=(o.dilationHFactor, o.dilationWFactor))
        return g.bias(op, y)

    @staticmethod
    def FULLY_CONNECTED(g: Twin, op: Operator, x):
        kernel = g.constant(op.inputs[1])
        y = tf.matmul(tf.reshape(x[0], (-1, int(kernel.shape[1]))), kernel, transpose_b=True)
        return _batched(g.bias(op, y), g.shape(op.outputs[0]))

    @staticmethod
    def MAX_POOL_2D(g: Twin, op: Operator, x):
        o = op.options
        return tf.nn.max_pool2d(x[0], (o.filterHeight, o.filterWidth), (o.strideH, o.strideW), _padding(o))

    @staticmethod
    def AVERAGE_POOL_2D(g: Twin, op: Operator, x):
        o = op.options
        return tf.nn.avg_pool2d(x[0], (o.filterHeight, o.filterWidth), (o.strideH, o.strideW), _padding(o))

    @staticmethod
    def ADD(g: Twin, op: Operator, x):
        return x[0] + x[1]

    @staticmethod
    def SUB(g: Twin, op: Operator, x):
        return x[0] - x[1]

    @staticmethod
    def MUL(g: Twin, op: Operator, x):
        return x[0] * x[1]

    @staticmethod
    def MEAN(g: Twin, op: Operator, x):
        axes = [int(a) for a in np.ravel(g.graph.tensors[op.inputs[1]].data)]
        return tf.reduce_mean(x[0], axis=axes, keepdims=bool(op.options.keepDims))

    @staticmethod
    def PAD(g: Twin, op: Operator, x):
        return tf.pad(x[0], g.graph.tensors[op.inputs[1]].data.astype(np.int64))

    @staticmethod
    def CONCATENATION(g: Twin, op: Operator, x):
        return tf.concat(x, axis=op.options.axis)

    @staticmethod
    def SOFTMAX(g: Twin, op: Operator, x):
        return tf.nn.softmax(op.options.beta * x[0])

    @staticmethod
    def LOGISTIC(g: Twin, op: Operator, x):
        return tf.sigmoid(x[0])

    @staticmethod
    def TANH(g: Twin, op: Operator, x):
        return tf.tanh(x[0])

    @staticmethod
    def RELU(g: Twin, op: Operator, x):
        return tf.nn.relu(x[0])

    @staticmethod
    def RELU6(g: Twin, op: Operator, x):
        return tf.nn.relu6(x[0])

    @staticmethod
    def HARD_SWISH(g: Twin, op: Operator, x):
        return x[0] * tf.nn.relu6(x[0] + 3.0) / 6.0


SUPPORTED = {name for name in vars(_Ops) if name.isupper()} | set(LAYOUT)


def shape_computations(graph: Graph) -> set[int]:
    """The operators that only compute a RESHAPE's target shape at run time (SHAPE, STRIDED_SLICE,
    PACK, ... of a converter's dynamic batch): integer outputs read by nothing but a RESHAPE's
    shape operand or another such operator. The twin takes each tensor's shape from the file, so
    it skips them."""
    found: set[int] = set()
    for op in reversed(graph.operators):
        out = op.outputs[0]
        if np.dtype(graph.tensors[out].dtype).kind not in "iu" or graph.tensors[out].quantized:
            continue
        users = graph.consumers(out)
        if users and all(u.index in found or (u.op == "RESHAPE" and u.inputs.index(out) == 1) for u in users):
            found.add(op.index)
    return found


@dataclass(frozen=True)
class Run:
    """One pass of the twin: the real values of the tensors asked for (in the view asked for), of
    every tensor, those some operators computed before their fused activation (a convolution's,
    where Keras had a ReLU layer after it), and the graph's output."""

    kept: dict[int, tf.Tensor]
    values: dict[int, tf.Tensor]
    before_activation: dict[int, tf.Tensor]
    output: tf.Tensor


class Twin:
    """A TFLite graph as a TensorFlow function of real-valued inputs."""

    def __init__(self, graph: Graph):
        self.skipped = shape_computations(graph)
        unsupported = sorted({op.op for op in graph.operators if op.index not in self.skipped} - SUPPORTED)
        if unsupported:
            raise GradcamError(
                f"{graph.path}: operator {', '.join(unsupported)} is not supported by the TFLite twin "
                f"(supported: {', '.join(sorted(SUPPORTED))})"
            )
        self.graph = graph
        used = {i for op in graph.operators if op.index not in self.skipped for i in op.inputs}
        with tf.init_scope():
            self._constants = {
                i: tf.constant(graph.tensors[i].real()) for i in used if graph.tensors[i].data is not None
            }
        self.exact = {op.index for op in graph.operators if op.index not in self.skipped and exact(graph, op)}
        accumulating = [op for op in graph.operators if op.index in self.exact and op.op in ACCUMULATING]
        weights = {i for op in accumulating for i in op.inputs[1:] if i >= 0}
        self.integers = Integers(graph, weights)

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self.graph.tensors[tensor].shape

    def constant(self, tensor: int) -> tf.Tensor:
        """A constant tensor's real value (dequantized weights; float16 weights widened), made
        once, eagerly, so that every traced function can capture it."""
        return self._constants[tensor]

    def bias(self, op: Operator, y: tf.Tensor) -> tf.Tensor:
        has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
        return y + self.constant(op.inputs[2]) if has_bias else y

    def __call__(
        self,
        x: tf.Tensor,
        keep: frozenset[int] = frozenset(),
        keep_before: frozenset[int] = frozenset(),
        view: Callable[[tf.Tensor], tf.Tensor] | None = None,
    ) -> Run:
        """Run on real inputs x (batch first, any layout of the input's values). keep: tensors whose
        values to return; keep_before: output tensors whose values before the fused activation to
        return; view: a reshape of the values returned (a 1-D model's rows of frames), through
        which the rest of the graph runs, so that gradients reach them."""
        tensors = self.graph.tensors
        source = self.graph.input
        values = {source: fake_quant(_batched(x, tensors[source].shape), tensors[source])}
        before, found = {}, {}

        def kept(value: tf.Tensor, into: dict, tensor: int) -> tf.Tensor:
            """Record the value (in the view) in `into`; what the rest of the graph reads from."""
            into[tensor] = view(value) if view else value
            return tf.reshape(into[tensor], tf.shape(value)) if view else value

        live = set(keep)  # the tensors a kept value's gradient must pass through: it and all after it
        for op in self.graph.operators:
            if op.index in self.skipped:
                continue
            out = op.outputs[0]
            through = any(i in live for i in op.inputs)  # a kept value's gradient passes through this operator
            if through:
                live.add(out)
            if op.op in LAYOUT:
                values[out] = fake_quant(_batched(values[op.inputs[0]], tensors[out].shape), tensors[out])
                continue
            inputs = [values[i] if i in values else self.constant(i) for i in op.inputs if i >= 0]
            if op.index in self.exact:  # the int8 kernel's own value
                value = self.integers.value(op, inputs, getattr(_Ops, op.op))
                if not through and out not in keep_before:  # no gradient passes here: the value alone
                    values[out] = kept(value, found, out) if out in keep else value
                    continue
            y = getattr(_Ops, op.op)(self, op, inputs)
            if out in keep_before:
                y = kept(y, before, out)
                live.add(out)
            y = _fused(op.options)(y)
            # The real path carries the gradient; an int8 kernel's value is its own (straight through).
            values[out] = y + tf.stop_gradient(value - y) if op.index in self.exact else fake_quant(y, tensors[out])
            if out in keep:
                values[out] = kept(values[out], found, out)
        return Run(found, values, before, values[self.graph.output])
