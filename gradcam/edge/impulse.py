"""What the job reads from a project's impulse: which learn block to explain, and what its Keras
metadata says (classes in output order, mode, input scaling, FOMO's kind and threshold)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gradcam.edge.sensors import SensorLayout
from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")

LEARN_BLOCKS = (
    "keras-transfer-image",
    "keras",
    "keras-transfer-kws",  # keyword spotting: transfer learning on audio features
    "keras-regression",
    "keras-akida-transfer-image",
    "keras-akida",
    "keras-object-detection",  # FOMO only: other detectors are refused by KerasMetadata.check
)


@dataclass(frozen=True)
class ImageResize:
    """How the impulse's image input block brings an image to the model's size (None: not said): its
    resizeMode, resizeMethod and cropAnchor (gradcam.engine.resize)."""

    mode: str | None = None
    method: str | None = None
    anchor: str | None = None

    @classmethod
    def of(cls, block: dict) -> ImageResize:
        """From an input block as deployment-metadata.json or the API gives it (camelCase)."""
        return cls(block.get("resizeMode"), block.get("resizeMethod"), block.get("cropAnchor"))


@dataclass(frozen=True)
class KerasMetadata:
    """What the job reads from a Keras learn block's metadata."""

    classes: list[str]  # in model output order (object detection: without the background)
    mode: str | None  # classification, regression, object-detection
    input_scaling: str
    last_layer: str | None  # object detection: fomo, mobilenet-ssd, yolov5, ...
    detection_threshold: float | None  # object detection: minConfidenceRating, when the block sets it

    def check(self, learn_type: str) -> None:
        """Refuse object detectors other than FOMO: their outputs are boxes, not a grid of cells."""
        if self.mode == "object-detection" and self.last_layer not in (None, "fomo"):
            raise GradcamError(
                f"the learn block ({learn_type}) is a {self.last_layer} object detector: only FOMO "
                "object detection models can be explained (their output is a grid of cells, not boxes)"
            )


def threshold_of(thresholds: list[dict], key: str = "minConfidenceRating") -> float | None:
    """A learn block's threshold (BlockThreshold JSON objects) by key, when it is a number."""
    for item in thresholds:
        value = item.get("value") if isinstance(item, dict) else None
        if item.get("key") == key and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


@dataclass(frozen=True)
class FeatureBlock:
    """A DSP block whose features a learn block takes, when they are not images (audio: mfe, mfcc,
    spectrogram): its output's shape (frames, columns) where its metadata gives one; a flat output
    (motion and sensors: spectral analysis, raw, ...): how its features were built."""

    id: int
    type: str
    name: str
    shape: tuple[int, int] | None = None
    sensor: SensorLayout | None = None


def feature_blocks(dsp_blocks: list[FeatureBlock], learn_name: str) -> tuple[FeatureBlock, ...]:
    """The DSP blocks feeding a learn block on time series, in the order their features are
    concatenated; several need each one's shape, to carry a map back to each block's frames."""
    if not dsp_blocks:
        raise GradcamError(f"the learn block {learn_name} takes the features of no DSP block")
    unknown = [f"{b.name} ({b.type}, id {b.id})" for b in dsp_blocks if b.shape is None]
    if len(dsp_blocks) > 1 and unknown:
        raise GradcamError(
            f"the learn block {learn_name} takes the features of {len(dsp_blocks)} DSP blocks, and the metadata "
            f"of {', '.join(unknown)} gives no frames x columns shape: a map cannot be carried back to its features"
        )
    return tuple(dsp_blocks)


@dataclass(frozen=True)
class ImpulseInfo:
    """What the job needs to know about the project's impulse."""

    project_id: int
    impulse_id: int | None
    learn_id: int
    learn_type: str
    classes: list[str]
    mode: str  # classification / regression / object-detection
    input_scaling: str
    image_shape: tuple[int, int, int] | None  # (height, width, channels)
    resize: ImageResize
    detection_threshold: float | None = None  # FOMO: the learn block's minConfidenceRating
    features: tuple[FeatureBlock, ...] = ()  # a time-series impulse (audio): the DSP blocks the model reads


def enum_value(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def choose_learn_block(blocks: list[tuple[int, str, str]]) -> tuple[int, str, str]:
    """The Keras classification, regression or object detection block among (id, type, name),
    not blindly the first learn block (an impulse may also hold an anomaly block); classification
    and regression first."""
    by_type = {block[1]: block for block in reversed(blocks)}
    for kind in LEARN_BLOCKS:
        if kind in by_type:
            learn_id, _, name = by_type[kind]
            log.info("learn block %s (%s, id %s)", name, kind, learn_id)
            return by_type[kind]
    found = ", ".join(f"{name} ({kind})" for _, kind, name in blocks) or "none"
    raise GradcamError(
        f"the impulse has no Keras classification, regression or object detection block (found: {found})"
    )
