"""A TFLite file read as plain records: its tensors (shape, type, quantization, constant data) and
its operators in execution order, through LiteRT's own flatbuffer schema (`ai_edge_litert`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from gradcam.errors import GradcamError

_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT64: np.int64,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.BOOL: np.bool_,
}


@dataclass(frozen=True)
class Tensor:
    """One tensor: its real value is (q - zero_point) * scale, per channel along `axis` when the
    scale has several entries; `data` is set for a constant (weights, biases, shapes)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int = 0
    data: np.ndarray | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and np.dtype(self.dtype).kind in "iu"

    def real(self) -> np.ndarray:
        """A constant's real value, float32: dequantized where it is quantized."""
        data = self.data
        if not self.quantized:
            return data.astype(np.float32)
        shape = [1] * data.ndim
        if len(self.scale) > 1:
            shape[self.axis] = -1
        scale, zero = self.scale.reshape(shape), self.zero_point.reshape(shape)
        return ((data.astype(np.float64) - zero) * scale).astype(np.float32)


@dataclass(frozen=True)
class Operator:
    """One operator: its builtin name (CONV_2D, ...), input and output tensor indices (-1: none)
    and its options object from the schema (None for options-free operators)."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object


@dataclass(frozen=True)
class Graph:
    """The main subgraph: tensors by index, operators in execution order, one input and one output."""

    path: Path
    content: bytes  # the flatbuffer, for LiteRT
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    input: int
    output: int

    def producer(self, tensor: int) -> Operator | None:
        return next((op for op in self.operators if tensor in op.outputs), None)

    def consumers(self, tensor: int) -> list[Operator]:
        return [op for op in self.operators if tensor in op.inputs]


def with_output(graph: Graph, tensor: int) -> bytes:
    """The graph's flatbuffer with `tensor` as its output: the scores before a final softmax, or the raw
    outputs before a post-processing operator, as LiteRT computes them."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(graph.content, 0))
    model.subgraphs[0].outputs = np.array([tensor], np.int32)
    builder = flatbuffers.Builder(len(graph.content))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor(index: int, t, buffers) -> Tensor:
    dtype = _DTYPES.get(t.type)
    raw = buffers[t.buffer].data if 0 < t.buffer < len(buffers) else None
    data = None
    if raw is not None and len(raw) and dtype is not None:
        data = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dtype).reshape(tuple(t.shape))
    q = t.quantization
    scale = zero = None
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, np.float64)
        zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), np.float64)
    shape = tuple(int(s) for s in (t.shape if t.shape is not None else ()))
    axis = int(q.quantizedDimension) if q is not None else 0
    return Tensor(index, (t.name or b"").decode(errors="replace"), shape, dtype, scale, zero, axis, data)


def read(path: str | Path) -> Graph:
    """The file's main subgraph (see `parse`)."""
    return parse(Path(path).read_bytes(), Path(path))


def parse(buffer: bytes, path: Path) -> Graph:
    """A flatbuffer's main subgraph (`path`: where it came from, for messages); a model with several
    inputs or outputs is refused in one line."""
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buffer, 0))
    except Exception as exc:
        raise GradcamError(f"{path}: not a readable TFLite model ({exc})") from None
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise GradcamError(
            f"{path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "only single-input, single-output models can be explained"
        )
    tensors = tuple(_tensor(i, t, model.buffers) for i, t in enumerate(graph.tensors))
    operators = []
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        name = _OPS.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"custom {code.customCode!r}")
        inputs = tuple(int(x) for x in (op.inputs if op.inputs is not None else ()))
        outputs = tuple(int(x) for x in (op.outputs if op.outputs is not None else ()))
        operators.append(Operator(i, name, inputs, outputs, op.builtinOptions))
    return Graph(path, buffer, tensors, tuple(operators), int(graph.inputs[0]), int(graph.outputs[0]))
