"""The TFLite model beside the explained one: what the device runs, on every sample.

LiteRT gives the device's answers. Where the TFLite model is explained too (its twin,
gradcam.engine.twin), the twin's outputs are checked against LiteRT's on every sample, and a map
is shown only where they match: a twin that does not compute what the device computes says
nothing of where the device looked. That holds for the twin's map beside the Keras one, and for
the shown map itself when the TFLite model is explained alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcam.engine.tflite import TfliteModel

if TYPE_CHECKING:
    from gradcam.engine.detection import ObjectMaps
    from gradcam.explainer import Explainer
    from gradcam.explanation import SampleMaps


@dataclass
class Comparison:
    """The TFLite model run beside on every sample, or why it could not be (then its columns stay
    empty)."""

    name: str
    model: TfliteModel | None = None
    problem: str = ""
    twin: Explainer | None = None  # its own maps beside the Keras model's; None: not drawn
    twin_shown: bool = False  # the maps shown are its twin's (a TFLite model explained alone)

    def run(self, inputs: np.ndarray, targets: np.ndarray, shown: list[SampleMaps]) -> list[Beside | None]:
        """Per sample of a batch: LiteRT's outputs, the twin's maps of the same targets, and whether
        the twin's outputs are LiteRT's. shown: the explained model's maps of the batch."""
        twin = self.twin and (lambda: self.twin.maps(inputs, targets))
        return self._beside(inputs, shown, twin, lambda maps: [m.probabilities for m in maps])

    def run_objects(self, inputs: np.ndarray, frames: list, shown: list[ObjectMaps]) -> list[Beside | None]:
        """As run, for an object detection model: the twin explains the objects the explained model
        found and missed (its plans), so that each object has both models' maps."""
        twin = self.twin and (lambda: self.twin.run_objects(inputs, frames, [], plans=[o.plan for o in shown]))
        return self._beside(inputs, shown, twin, lambda maps: [m.grid for m in maps])

    def _beside(self, inputs: np.ndarray, shown: list, twin: Callable[[], list] | None, outputs_of: Callable):
        """LiteRT on the batch; the twin's maps (twin(): beside; the shown ones when they are the
        twin's), each checked against LiteRT through its outputs (outputs_of(maps))."""
        if self.model is None:
            return [None] * len(inputs)
        outputs = self.model.predict(inputs)
        if twin is None and not self.twin_shown:
            return [Beside(o) for o in outputs]
        maps = twin() if twin else shown
        checks = self.model.mismatches(np.stack(outputs_of(maps)), outputs)
        beside = [None] * len(maps) if self.twin_shown else maps
        return [Beside(o, m, check) for o, m, check in zip(outputs, beside, checks, strict=True)]


def tflite_kind(comparison: Comparison | None) -> str:
    """How captions name the TFLite model: its type (int8, uint8, float32), else "tflite"."""
    return comparison.model.kind if comparison and comparison.model else "tflite"


@dataclass(frozen=True)
class Beside:
    """What the TFLite model gave for one sample: LiteRT's outputs, its twin's maps when they are
    drawn beside the Keras model's, and why the twin's map is withheld ("": it is not)."""

    outputs: np.ndarray
    maps: SampleMaps | ObjectMaps | None = None
    withheld: str = ""
