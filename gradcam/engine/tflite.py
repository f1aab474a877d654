"""The TFLite model beside the Keras one: what the device runs, usually int8.

It runs with LiteRT (`ai-edge-litert`, the successor of tf.lite.Interpreter) on exactly the inputs
the Keras model saw (Edge Impulse's preprocessing, already scaled), quantized with its input
tensor's own scale and zero point, q = round(x / scale + zero_point) clipped to the type's range;
its output is dequantized as (q - zero_point) * scale.

"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from gradcam.errors import GradcamError, not_found
from gradcam.quiet import native_stderr_captured

if TYPE_CHECKING:
    from gradcam.engine.model import ModelAdapter
    from gradcam.engine.tflite_graph import Graph


FLOAT_TOLERANCE = 1e-4  # a float32 twin's outputs against LiteRT's, relative to the largest
STEP_SLACK = 1e-3  # an int8 twin's outputs are on the output grid: float error only, well below a step


class TfliteModel:
    """One interpreter; a batch is one invocation when the model accepts a batch dimension, else
    one invocation per image."""

    def __init__(self, path: str | Path, input_size: int, outputs: int, content: bytes | None = None):
        """Open `path` (or the flatbuffer `content` read from it) and check it against the Keras
        model: `input_size` values in, `outputs` out."""
        self.path = Path(path)
        if content is None and not self.path.is_file():
            raise GradcamError(not_found(self.path, "TFLite model"))
        source = {"model_path": str(self.path)} if content is None else {"model_content": content}
        try:
            with native_stderr_captured():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interpreter = Interpreter(**source, num_threads=os.cpu_count())
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise GradcamError(f"{self.path}: not a readable TFLite model ({str(exc).splitlines()[0]})") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape, out_shape = self._input["shape"], self._output["shape"]
        if int(np.prod(shape[1:])) != input_size:
            raise GradcamError(
                f"{self.path}: its input {shape.tolist()} holds {int(np.prod(shape[1:]))} values per image, "
                f"the Keras model's {input_size}"
            )
        if int(np.prod(out_shape[1:])) != outputs:
            raise GradcamError(f"{self.path}: it has {int(np.prod(out_shape[1:]))} outputs, the Keras model {outputs}")
        self._batch = int(shape[0])

    @classmethod
    def beside(cls, path: str | Path, adapter: ModelAdapter) -> TfliteModel:
        """`path` opened and checked against the Keras model that `adapter` wraps."""
        return cls(path, math.prod(adapter.image_shape), math.prod(adapter.output_shape))

    @classmethod
    def of(cls, graph: Graph, output: int | None = None) -> TfliteModel:
        """LiteRT on a twin's own flatbuffer: what the twin is checked against; with `output`, on the
        graph ending at that tensor (its scores before the final activation)."""
        from gradcam.engine.tflite_graph import with_output

        tensors, end = graph.tensors, graph.output if output is None else output
        sizes = (math.prod(tensors[graph.input].shape[1:]), math.prod(tensors[end].shape[1:]))
        return cls(graph.path, *sizes, content=graph.content if output is None else with_output(graph, output))

    @property
    def kind(self) -> str:
        """The input type: int8, uint8 or float32."""
        return np.dtype(self._input["dtype"]).name

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Float inputs as the Keras model takes them (batch, ...) -> dequantized outputs (batch, outputs)."""
        return self.run(self.quantize(inputs))

    def quantize(self, inputs: np.ndarray) -> np.ndarray:
        """Float inputs (batch, ...) -> what the model's input tensor holds: its integers, or floats."""
        return _quantize(inputs.reshape(len(inputs), *self._input["shape"][1:]), self._input)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Quantized inputs (`quantize`) -> dequantized outputs (batch, outputs)."""
        inputs = inputs.reshape(len(inputs), *self._input["shape"][1:])
        if self._batch != len(inputs) and not self._resize(len(inputs)):
            return np.concatenate([self.run(x[None]) for x in inputs])
        self._interpreter.set_tensor(self._input["index"], inputs)
        self._interpreter.invoke()
        return _dequantize(self._interpreter.get_tensor(self._output["index"]), self._output).reshape(len(inputs), -1)

    def mismatches(self, twin: np.ndarray, device: np.ndarray) -> list[str]:
        """Per sample, why the twin's outputs are not this model's ("" where they match): a float
        model's within FLOAT_TOLERANCE of its largest output, a quantized one's within one output
        quantization step."""
        gap = np.abs(twin.reshape(len(twin), -1) - device.reshape(len(device), -1)).max(axis=1)
        if np.dtype(self._output["dtype"]).kind == "f":
            relative = gap / np.maximum(np.abs(device.reshape(len(device), -1)).max(axis=1), 1e-12)
            return [
                f"the twin's outputs differ from LiteRT's by {r:.1e} of the largest (allowed: {FLOAT_TOLERANCE:.0e})"
                if r > FLOAT_TOLERANCE
                else ""
                for r in relative
            ]
        steps = gap / self._output["quantization"][0]
        return [
            f"the twin's outputs lie {s:.0f} output steps from LiteRT's (allowed: 1)" if s > 1 + STEP_SLACK else ""
            for s in steps
        ]

    def _resize(self, batch: int) -> bool:
        """Give the input a batch dimension of `batch`; False if the model cannot take it (a
        reshape to batch 1 inside, say): then it runs image by image."""
        shape = [batch, *self._input["shape"][1:]]
        try:
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self._interpreter.resize_tensor_input(self._input["index"], [1, *shape[1:]])
            self._interpreter.allocate_tensors()
            self._batch = 1
            return False
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = batch
        return True


def _quantize(x: np.ndarray, tensor: dict) -> np.ndarray:
    dtype = np.dtype(tensor["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero_point = tensor["quantization"]
    info = np.iinfo(dtype)
    # Rounded before the zero point is added, in float32, as the twin's fake quantization does
    # (gradcam.engine.twin): adding it first moves near-ties of a grayscale image's pixels.
    return np.clip(np.round(x / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(q: np.ndarray, tensor: dict) -> np.ndarray:
    if np.dtype(tensor["dtype"]).kind == "f":
        return q.astype(np.float32)
    scale, zero_point = tensor["quantization"]
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)
