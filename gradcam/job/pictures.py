"""A sample's pictures: its overlay, or a captioned panel, encoded as JPEG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gradcam.choices import LAYOUTS, OVERLAYS
from gradcam.engine.agreement import ELSEWHERE
from gradcam.engine.overlay import blend
from gradcam.engine.trust import TRUST_THRESHOLD
from gradcam.errors import check_choice
from gradcam.job.inputs import enlarged
from gradcam.job.looks import ClassLook
from gradcam.job.records import Outcome, SampleRecord

JPEG_QUALITY = 90


@dataclass(frozen=True)
class PictureOptions:
    alpha: float = 0.4  # the heatmap's weight in the blend
    layout: str = "blend"  # blend: the overlay alone; panel: original, heatmap and blend, captioned
    max_side: int = 1024  # the pictures' long side at most, in pixels; 0: the file's size
    overlays: str = "all"  # all, or mistakes: pictures only for mistakes and unlabeled samples

    def __post_init__(self) -> None:
        check_choice("layout", self.layout, LAYOUTS)
        check_choice("overlays", self.overlays, OVERLAYS)

    def wanted(self, record: SampleRecord) -> bool:
        """Whether the sample gets pictures: every sample, or only those not judged correct."""
        return self.overlays == "all" or record.answer.correct is not True


class Drawable(Protocol):
    """An explanation that can draw itself (gradcam.explainer.Explanation, a detection's)."""

    def overlay(self, alpha: float) -> np.ndarray: ...

    def panel(self, alpha: float, caption: str) -> np.ndarray: ...


def draw(explanation: Drawable, options: PictureOptions, caption: str = "") -> bytes:
    """The overlay, or in panel layout the captioned panel, as JPEG bytes."""
    if options.layout == "panel":
        picture = explanation.panel(options.alpha, caption)
    else:
        picture = explanation.overlay(options.alpha)
    return _jpeg(picture)


def class_tile(look: ClassLook, alpha: float) -> bytes:
    """A class's mean map over its mean image, enlarged to be read (as images are), with the region
    its maps keep landing on boxed in red when it is flagged; JPEG."""
    image = enlarged(look.image)
    height, width = image.shape[:2]
    top = float(look.heat.max())
    heat = cv2.resize(look.heat / top if top > 0 else look.heat, (width, height), interpolation=cv2.INTER_LINEAR)
    picture = blend(image, heat, alpha)
    if look.flagged and look.candidate is not None:
        scale = width / look.image.shape[1]
        x0, y0, x1, y1 = (round(v * scale) for v in look.candidate.region.box)
        cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 0), 2)
    return _jpeg(picture)


def _jpeg(picture: np.ndarray) -> bytes:
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    _ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return encoded.tobytes()


def _answer(outcome: Outcome) -> str:
    confidence = outcome.confidence
    return f"{outcome.predicted}{'' if confidence is None else f' ({confidence:.0%})'}"


def caption(record: SampleRecord, tflite_kind: str = "tflite") -> str:
    """A panel's caption: true label, prediction, the TFLite model's where it disagrees, and the
    map's faithfulness when measured."""
    truth = record.true_label if record.true_label is not None else "unlabeled"
    text = f"true: {truth}  predicted: {_answer(record.answer)}"
    window = record.window
    if window and window.start_ms is not None:
        text += f"  {window.start_ms}-{window.end_ms} ms"
    if record.agrees is False and record.tflite is not None:
        text += f"  {tflite_kind}: {_answer(record.tflite)}"
    trust = record.map.faithfulness
    if trust is not None:
        text += f"  trust {trust:.2f}{'' if trust >= TRUST_THRESHOLD else ' (low)'}"
    return text


def tflite_caption(record: SampleRecord, tflite_kind: str) -> str:
    """The caption of the TFLite model's own map's panel: its answer, and how far its map agrees
    with the Keras model's."""
    text = f"{tflite_kind} model: {_answer(record.tflite)}"
    found = record.tflite_map
    if found and found.agreement is not None:
        low = " (looks elsewhere)" if found.agreement < ELSEWHERE else ""
        text += f"  map agreement with Keras {found.agreement:.2f}{low}"
    return text


def object_caption(record: SampleRecord, tflite_kind: str = "tflite") -> str:
    """A detection panel's caption: what was found against the boxes, and the TFLite model's
    detections where they differ."""
    counts = record.detection.counts if record.detection else None
    if counts is None:
        text = f"unlabeled  detected: {record.answer.predicted}"
    else:
        text = f"boxes: {counts.tp + counts.fn}  found: {counts.tp}  false: {counts.fp}  missed: {counts.fn}"
    if record.agrees is False and record.tflite is not None:
        text += f"  {tflite_kind}: {record.tflite.predicted}"
    return text
