"""The int8 kernels' own arithmetic for the operators that accumulate (convolution, depthwise
convolution, fully connected), so that the twin's values are the device's, not a float
approximation of them.

An int8 kernel sums products of integers exactly (int32), adds the int32 bias, scales the sum by
s_in * s_w / s_out (per output channel) and rounds half to even (XNNPACK's fp32 requantization,
which LiteRT runs on CPU), then clamps to the fused activation's range. Rounding real-valued float
sums instead puts near-ties one step apart, and the steps grow through a deep network. Here the
same TensorFlow operator runs on the integer operands (held in float32: exact below 2^24, far
above a 3x3x256 int8 sum), and the value is taken from it while the gradient is the real-valued
path's (straight through).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from gradcam.engine.tflite_graph import Graph, Operator, Tensor

ACCUMULATING = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_ACT = schema.ActivationFunctionType


def exact(graph: Graph, op: Operator) -> bool:
    """Whether the operator is an int8 kernel computed here: quantized input and output, and
    symmetric quantized weights (zero point 0) with an int32 bias, if any."""
    if op.op not in ACCUMULATING:
        return False
    x, w, out = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    bias = graph.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    symmetric = w.quantized and w.data is not None and not np.any(w.zero_point)
    return x.quantized and out.quantized and symmetric and (bias is None or bias.dtype == np.int32)


class Integers:
    """A graph's constants as the int8 kernels hold them: the stored integers, as float32."""

    def __init__(self, graph: Graph, tensors: set[int]):
        self.graph = graph
        with tf.init_scope():
            self._constants = {i: tf.constant(graph.tensors[i].data.astype(np.float32)) for i in tensors}

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self.graph.tensors[tensor].shape

    def constant(self, tensor: int) -> tf.Tensor:
        return self._constants[tensor]

    def bias(self, op: Operator, y: tf.Tensor) -> tf.Tensor:
        has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
        return y + self.constant(op.inputs[2]) if has_bias else y


def integer(x: tf.Tensor, tensor: Tensor) -> tf.Tensor:
    """A quantized tensor's real values -> its integers less the zero point, q - z."""
    return tf.round(x / float(tensor.scale[0]))


def requantized(graph: Graph, op: Operator, accumulator: tf.Tensor) -> tf.Tensor:
    """An int8 kernel's int32 accumulator -> its output's real values: scaled per output channel,
    rounded half to even, clamped to the fused activation's range."""
    x, w, out = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    scale = (x.scale[0] * w.scale / out.scale[0]).astype(np.float32)
    zero = float(out.zero_point[0])
    low, high = _clamp(getattr(op.options, "fusedActivationFunction", _ACT.NONE), out)
    q = tf.clip_by_value(tf.round(accumulator * scale) + zero, low, high)
    return (q - zero) * float(out.scale[0])


def _clamp(activation: int, out: Tensor) -> tuple[float, float]:
    """The quantized range a fused activation leaves: the type's, cut at real 0 (ReLU), 6 (ReLU6)
    or -1 and 1."""
    info, scale, zero = np.iinfo(out.dtype), float(out.scale[0]), float(out.zero_point[0])
    low, high = float(info.min), float(info.max)
    bounds = {_ACT.RELU: (0.0, None), _ACT.RELU6: (0.0, 6.0), _ACT.RELU_N1_TO_1: (-1.0, 1.0)}.get(activation)
    if bounds is None:
        return low, high
    low = max(low, zero + round(bounds[0] / scale))
    return low, high if bounds[1] is None else min(high, zero + round(bounds[1] / scale))
