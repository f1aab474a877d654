"""Typed records, from the model to the report: one record per sample, made of typed parts, and the
run's totals. Numbers stay as computed; only the report writer rounds them and turns records into
CSV and JSON columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from gradcam.engine.fomo import Box, Counts
from gradcam.engine.trust import trusted
from gradcam.job.looks import Looks, View
from gradcam.job.weights import GroupWeights, Weights

if TYPE_CHECKING:
    from gradcam.engine.calibration import Choice


@dataclass(frozen=True)
class Outcome:
    """What a model (the Keras model, or the TFLite model beside it) answered for one sample,
    judged against the sample's label."""

    predicted: str  # the class; regression: the value as text; detection: the labels found, or "nothing"
    confidence: float | None  # probability of the prediction; None: regression, or nothing detected
    correct: bool | None = None  # None: unlabeled
    error: float | None = None  # regression: |prediction - label|
    scores: dict[str, float] = field(default_factory=dict)  # per class (regression: "value")


@dataclass(frozen=True)
class MapFacts:
    """What one sample's map says."""

    explained: str  # the class whose score the map explains (regression: "value")
    peak: tuple[int, int] | None  # the file's pixel at the centre of the hottest region; None: no single peak
    blank: bool  # nothing in the image raised the explained score: the map is all zero
    faithfulness: float | None = None  # -1..1 (gradcam.engine.faithfulness); None: not measured
    contrast_faithfulness: float | None = None  # a mistake's contrast map's (of its true class)
    evidence: float | None = None  # 0..1, agreement with the model's own evidence; None: not measured
    contrast_evidence: float | None = None  # a mistake's contrast map's

    @property
    def trusted(self) -> bool | None:
        """The map's one trust verdict (gradcam.engine.trust); None: neither check was made."""
        return trusted(self.faithfulness, self.evidence)


@dataclass(frozen=True)
class TfliteMap:
    """The TFLite model's own map of a sample (its twin's), beside the Keras model's."""

    explained: str  # the class its map explains: the TFLite model's answer, or the target class
    peak: tuple[int, int] | None  # the file's pixel at the centre of its hottest region; None: blank (or a window)
    agreement: float | None  # with the Keras map (gradcam.engine.agreement); None: either map has no order
    faithfulness: float | None = None  # measured against the TFLite model itself
    peak_in_box: bool | None = None  # an object's map (FOMO); None: no box


@dataclass(frozen=True)
class ObjectRecord:
    """One explained object of a detection model: a detection or a missed box, and its map's peak."""

    kind: str  # "detection" or "missed"
    label: str
    confidence: float | None  # the detection's; None for a missed box
    centroid: tuple[float, float] | None  # the detection's, in the file's pixels
    box: Box | None  # the box it matched, or the missed box
    peak: tuple[float, float] | None  # the file's pixels; None: the map is all zero
    peak_in_box: bool | None  # None: there is no box
    faithfulness: float | None = None  # within the object's neighbourhood; None: not measured
    tflite: TfliteMap | None = None  # the TFLite model's own map of the same object; None: not drawn

    @property
    def matched(self) -> bool:
        """A detection that matched a box: a true positive."""
        return self.kind == "detection" and self.box is not None


@dataclass(frozen=True)
class Objects:
    """What a detection model found in one image, judged against its boxes."""

    counts: Counts | None  # None: the image has no boxes listed
    objects: tuple[ObjectRecord, ...]


@dataclass(frozen=True)
class WindowFacts:
    """Where an audio (feature) window comes from, and where along it, and in which band, its map
    peaks; None where the inputs do not say or the map is blank."""

    sample_id: int | None
    start_ms: int | None
    end_ms: int | None
    peak_frame: int | None  # the frame under the map's peak, from the window's first
    peak_ms: int | None  # the peak's time from the sample's start (the frame's centre)
    peak_filter: int | None = None  # the column under the peak (filter, cepstrum or FFT bin) where the map tells
    peak_hz: float | None = None  # that column's centre frequency (MFE, spectrogram)
    peak_block: str | None = None  # the DSP block under the peak
    peak_feature: str | None = None  # a flat block's (motion, sensors): the feature that weighs most for the class


@dataclass(frozen=True)
class SampleRecord:
    """One explained sample."""

    source: str  # its path in the dataset
    category: str
    true_label: str | None
    answer: Outcome
    map: MapFacts
    tflite: Outcome | None = None  # the TFLite model's answer on the same input; None: not run
    agrees: bool | None = None  # whether it is the Keras model's answer (regression: within the threshold)
    tflite_map: TfliteMap | None = None  # the TFLite model's own map; None: not drawn, or withheld
    withheld: str = ""  # why the TFLite twin's map is not shown: its outputs are not LiteRT's ("": shown)
    detection: Objects | None = None  # object detection only
    window: WindowFacts | None = None  # audio (feature) models only
    weights: GroupWeights | None = None  # models explained at their input features: shares per feature group

    @property
    def folder(self) -> str:
        if self.answer.correct is None:
            return "unlabeled"
        return "correct" if self.answer.correct else "incorrect"


@dataclass(frozen=True)
class Pictures:
    """A sample's encoded pictures: its overlay (or panel; None: not wanted, --overlays mistakes),
    a mistake's contrast overlay (the map of its true class, in blend layout), the TFLite model's
    own map, and for an audio
    window the sound of its sample, stored once for all the sample's windows."""

    overlay: bytes | None
    contrast: bytes | None = None
    tflite: bytes | None = None  # the TFLite model's own map, in the same layout
    sound: tuple[str, bytes | None] | None = None  # an audio window's sample as WAV: (name, bytes; None: stored)


@dataclass(frozen=True)
class Rendered:
    """A sample's record and pictures, ready for deploy.zip, and its map and image for the run's
    class summaries (gradcam.job.looks; None: not summed)."""

    record: SampleRecord
    pictures: Pictures
    view: View | None = None


@dataclass(frozen=True)
class Skipped:
    """A sample that could not be explained, and why."""

    source: str
    reason: str


# --- Run totals ---


@dataclass(frozen=True)
class Tally:
    """How many samples went where."""

    correct: int = 0
    incorrect: int = 0
    unlabeled: int = 0
    skipped: int = 0
    blank: int = 0  # maps that are all zero


@dataclass(frozen=True)
class ScoreRow:
    """A score of each of some maps against a threshold (faithfulness; the TFLite map's agreement):
    how many maps, how many score at least the threshold, their share and the mean score."""

    maps: int
    passed: int
    mean: float

    @property
    def share(self) -> float:
        return self.passed / self.maps


@dataclass(frozen=True)
class DetectionRow:
    """Object detection counts, and the share of found objects whose map peaks inside their box."""

    counts: Counts
    peak_in_box: float | None  # None: nothing found


Row = TypeVar("Row", ScoreRow, DetectionRow)


@dataclass(frozen=True)
class PerClass(Generic[Row]):
    """A figure of the run measured at a threshold, in all and per class."""

    threshold: float
    total: Row
    classes: dict[str, Row]  # empty when the task has no classes


Trust = PerClass[ScoreRow]  # a score of the maps (faithfulness, agreement with the evidence, the verdict), per class
MapAgreement = PerClass[ScoreRow]  # the TFLite maps' agreement with the Keras maps, per explained class
DetectionTotals = PerClass[DetectionRow]  # object detection, per object class


@dataclass(frozen=True)
class TfliteTotals:
    """The TFLite model compared with on every sample, or why it could not be."""

    model: str  # its file name
    kind: str | None = None  # int8, uint8 or float32; None: it could not be used
    compared: int = 0
    disagreements: int = 0
    problem: str = ""  # why its columns are empty
    twin_shown: bool = False  # its answers were compared with its twin's, whose maps are shown (no Keras model)
    maps: MapAgreement | None = None  # its own maps' agreement with the Keras maps; None: not drawn
    withheld: int = 0  # samples whose twin's map was withheld (its outputs are not LiteRT's)

    @property
    def agreement(self) -> float | None:
        return 1 - self.disagreements / self.compared if self.compared else None

    @property
    def against(self) -> str:
        """What its answers were compared with."""
        return "the twin whose maps are shown" if self.twin_shown else "the Keras model"


@dataclass(frozen=True)
class Totals:
    """What one kind of model adds to the run's totals (each None where it does not apply)."""

    trust: Trust | None = None  # faithfulness
    detection: DetectionTotals | None = None
    tflite: TfliteTotals | None = None
    looks: Looks | None = None  # where each class looks, and the shortcuts found
    weights: Weights | None = None  # what each class weighs (models explained at their input features)
    evidence: Trust | None = None  # the maps' agreement with the model's own evidence, where measured
    trusted: Trust | None = None  # each map's one verdict (gradcam.engine.trust): the share to trust


@dataclass(frozen=True)
class RunInfo:
    """What the run was and what it found: for results.json and the report's header."""

    model: str
    layer: str  # the explained layers, comma separated
    task: str
    method: str
    classes: list[str]
    parameters: dict  # the options that shape the result, by name, as given
    layers: list[dict] = field(default_factory=list)  # deepest first: name, type, size, method (Explainer.layers)
    last_conv: dict = field(default_factory=dict)  # name, size (Explainer.last_conv)
    resolution: str = ""  # h x w of the explained map
    tally: Tally = Tally()
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    totals: Totals = Totals()
    choice: Choice | None = None  # what `--method auto` chose, and every candidate's agreement
