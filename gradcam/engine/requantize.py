"""The int8 kernels' own arithmetic, as LiteRT runs them on the CPU (XNNPACK), so that the twin's
values are the device's, not a float approximation of them: the operators that accumulate
(convolution, depthwise convolution, fully connected) and ADD.

An accumulating kernel sums products of integers exactly (int32), adds the int32 bias, scales the
sum by s_in * s_w / s_out (per output channel), each product and quotient rounded to float32 as
XNNPACK forms it, and rounds half to even (its fp32 requantization), then clamps to the fused
activation's range. The same TensorFlow operator runs here on the integer operands (held in
float32: exact below 2^24, far above a 3x3x256 int8 sum).

ADD is XNNPACK's fixed-point sum: each input's integer times a multiplier of 21 bits at most, formed
from s_a / s_out and s_b / s_out in float32, and the int32 sum shifted right with rounding half up.

Rounding in float64 (the scale formed in float64, or ADD summed on real values) puts near-ties one
step apart, and the steps grow through a deep network: measured on a real 96x96 int8 MobileNet and
its 87 photos, the outputs lay more than one step from LiteRT's on 11 of them, against none here.
The value is taken from here while the gradient is the real-valued path's (straight through).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from gradcam.engine.tflite_graph import Graph, Operator, Tensor

ACCUMULATING = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_ACT = schema.ActivationFunctionType

# One operator on integers: (graph's integer constants, operator, inputs' q - z) -> accumulator.
Accumulate = Callable[["Integers", Operator, list[tf.Tensor]], tf.Tensor]


def exact(graph: Graph, op: Operator) -> bool:
    """Whether the operator is an int8 kernel computed here: an accumulating one with quantized input
    and output, symmetric quantized weights (zero point 0) and an int32 bias, if any; or an ADD of
    two quantized tensors of one scale each into a quantized output."""
    out = graph.tensors[op.outputs[0]]
    if op.op == "ADD":
        a, b = (graph.tensors[i] for i in op.inputs)
        return all(t.quantized and len(t.scale) == 1 for t in (a, b, out)) and a.shape == b.shape
    if op.op not in ACCUMULATING:
        return False
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    bias = graph.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    symmetric = w.quantized and w.data is not None and not np.any(w.zero_point)
    return x.quantized and out.quantized and symmetric and (bias is None or bias.dtype == np.int32)


class Integers:
    """A graph's constants as the int8 kernels hold them (the stored integers, as float32), and each
    exact operator's value from its inputs' real values."""

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

    def value(self, op: Operator, inputs: list[tf.Tensor], accumulate: Accumulate) -> tf.Tensor:
        """The operator's output as the kernel computes it, as real values; accumulate: the operator
        itself (the twin's), run here on integers."""
        tensors = self.graph.tensors
        if op.op == "ADD":
            return added(self.graph, op, *inputs)
        return requantized(self.graph, op, accumulate(self, op, [integer(inputs[0], tensors[op.inputs[0]])]))


def integer(x: tf.Tensor, tensor: Tensor) -> tf.Tensor:
    """A quantized tensor's real values -> its integers less the zero point, q - z."""
    return tf.round(x / float(tensor.scale[0]))


def requantized(graph: Graph, op: Operator, accumulator: tf.Tensor) -> tf.Tensor:
    """An int8 kernel's int32 accumulator -> its output's real values: scaled per output channel,
    rounded half to even, clamped to the fused activation's range."""
    x, w, out = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    scale = np.float32(x.scale[0]) * w.scale.astype(np.float32) / np.float32(out.scale[0])
    zero = float(out.zero_point[0])
    low, high = _clamp(op, out)
    q = tf.clip_by_value(tf.round(accumulator * scale) + zero, low, high)
    return (q - zero) * float(out.scale[0])


def _bits(value: np.float32) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _multiplier(scale: np.float32, shift: int) -> int:
    """round(scale * 2^shift), formed as XNNPACK forms it: the shift added to the float's exponent."""
    return int(np.rint(struct.unpack("<f", struct.pack("<I", _bits(scale) + (shift << 23)))[0]))


def added(graph: Graph, op: Operator, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """XNNPACK's quantized ADD on two real-valued inputs: ((q_a - z_a) m_a + (q_b - z_b) m_b + half)
    >> shift, with multipliers of 21 bits at most (rounding half up), then clamped to the fused
    activation's range; as real values. The int32 sum is held in float64, exact below 2^53, so that a
    gradient tape keeps following the tensors (it does not follow integers)."""
    ta, tb, out = (graph.tensors[i] for i in (*op.inputs, op.outputs[0]))
    scales = [np.float32(t.scale[0]) / np.float32(out.scale[0]) for t in (ta, tb)]
    shift = 20 - ((_bits(max(scales)) >> 23) - 127)
    total = float(1 << (shift - 1))
    for x, t, s in zip((a, b), (ta, tb), scales, strict=True):
        total += tf.cast(integer(x, t), tf.float64) * float(_multiplier(s, shift))
    zero = float(out.zero_point[0])
    low, high = _clamp(op, out)
    q = tf.clip_by_value(tf.cast(tf.floor(total / 2.0**shift), tf.float32) + zero, low, high)
    return (q - zero) * float(out.scale[0])


def _clamp(op: Operator, out: Tensor) -> tuple[float, float]:
    """The quantized range the operator's fused activation leaves: the type's, cut at real 0 (ReLU),
    6 (ReLU6) or -1 and 1."""
    activation = getattr(op.options, "fusedActivationFunction", _ACT.NONE)
    info, scale, zero = np.iinfo(out.dtype), float(out.scale[0]), float(out.zero_point[0])
    low, high = float(info.min), float(info.max)
    bounds = {_ACT.RELU: (0.0, None), _ACT.RELU6: (0.0, 6.0), _ACT.RELU_N1_TO_1: (-1.0, 1.0)}.get(activation)
    if bounds is None:
        return low, high
    low = max(low, zero + round(bounds[0] / scale))
    return low, high if bounds[1] is None else min(high, zero + round(bounds[1] / scale))
