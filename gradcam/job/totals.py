"""Run totals, summed record by record as the job writes them: pure code (no TensorFlow, no files).
The warnings drawn from them are in gradcam.job.warnings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from gradcam.engine.agreement import AGREES, ELSEWHERE
from gradcam.engine.fomo import Counts
from gradcam.engine.trust import trusted
from gradcam.job.looks import ClassLooks, View
from gradcam.job.records import (
    DetectionRow,
    DetectionTotals,
    PerClass,
    SampleRecord,
    ScoreRow,
    Tally,
    TfliteTotals,
    Totals,
)
from gradcam.job.weights import WeightSums

if TYPE_CHECKING:
    from gradcam.job.beside import Comparison


class ScoreSums:
    """A score per map (faithfulness, or the TFLite map's agreement), summed as the maps come: per
    class, the maps, those scoring at least the threshold, and the sum."""

    def __init__(self, threshold: float, per_class: bool):
        self.threshold, self.per_class = threshold, per_class
        self._sums: dict[str, list] = {}  # class -> [maps, passed, sum of scores]

    def add(self, name: str, value: float | None) -> None:
        """One map: the class it explains and its score (None: not measured)."""
        if value is None:
            return
        sums = self._sums.setdefault(name, [0, 0, 0.0])
        sums[0] += 1
        sums[1] += value >= self.threshold
        sums[2] += value

    def result(self) -> PerClass[ScoreRow] | None:
        """The rows in all and, when per class, per class; None when no map was scored."""
        if not self._sums:
            return None
        rows = {name: ScoreRow(n, passed, total / n) for name, (n, passed, total) in sorted(self._sums.items())}
        n, passed, total = (sum(column) for column in zip(*self._sums.values(), strict=True))
        return PerClass(self.threshold, ScoreRow(n, passed, total / n), rows if self.per_class else {})


class DetectionSums:
    """Object detection over the labelled images, summed per class: counts, and how many found
    objects' maps peak inside their box."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._counts: dict[str, Counts] = {}
        self._peaks: dict[str, list[int]] = {}  # class -> [found objects, their maps peaking in the box]

    def add(self, record: SampleRecord) -> None:
        if record.answer.correct is None or record.detection is None:
            return
        for o in record.detection.objects:
            add = Counts(int(o.matched), int(o.kind == "detection" and not o.matched), int(o.kind == "missed"))
            self._counts[o.label] = self._counts.get(o.label, Counts(0, 0, 0)) + add
            if o.matched:
                peaks = self._peaks.setdefault(o.label, [0, 0])
                peaks[0] += 1
                peaks[1] += bool(o.peak_in_box)

    def result(self) -> DetectionTotals:
        def row(counts: Counts, peaks: list[int]) -> DetectionRow:
            found, inside = peaks
            return DetectionRow(counts, inside / found if found else None)

        total = sum(self._counts.values(), Counts(0, 0, 0))
        every = [sum(column) for column in zip(*self._peaks.values(), strict=True)] or [0, 0]
        classes = {label: row(self._counts[label], self._peaks.get(label, [0, 0])) for label in sorted(self._counts)}
        return DetectionTotals(self.threshold, row(total, every), classes)


MapScores = tuple[str, float | None, float | None]  # a map's class, faithfulness and agreement with the evidence


def map_scores(record: SampleRecord) -> list[MapScores]:
    """A sample's map: the class it explains, its faithfulness and its agreement with the evidence."""
    return [(record.map.explained, record.map.faithfulness, record.map.evidence)]


def object_scores(record: SampleRecord) -> list[MapScores]:
    """Each object's map (FOMO): its class and its faithfulness."""
    return [(o.label, o.faithfulness, None) for o in record.detection.objects] if record.detection else []


def agreements(record: SampleRecord) -> list[tuple[str, float | None]]:
    """The TFLite model's own maps of a sample: the class the Keras map explains, and how far the
    two maps agree (an object detection model's: each object's)."""
    if record.detection is not None:
        return [(o.label, o.tflite.agreement) for o in record.detection.objects if o.tflite is not None]
    found = record.tflite_map
    return [] if found is None else [(record.map.explained, found.agreement)]


class RunningTotals:
    """The run's totals as running sums over the records, so that no record is held: the folders'
    counts and blank maps, faithfulness (of the maps `scores` gives per record), object detection
    (with a detection threshold) and the TFLite model's agreement (with a comparison)."""

    def __init__(
        self,
        scores: Callable[[SampleRecord], Iterable[MapScores]],
        trust: ScoreSums,
        tflite: Comparison | None = None,
        detection: DetectionSums | None = None,
        looks: ClassLooks | None = None,
        weights: WeightSums | None = None,
    ):
        """looks: where each class looks (images, audio windows); weights: what each class weighs
        (models explained at their input features)."""
        self.scores, self.trust, self.tflite, self.detection = scores, trust, tflite, detection
        self.looks, self.weights = looks, weights
        self.agreement = ScoreSums(ELSEWHERE, per_class=trust.per_class)  # the TFLite maps' with the Keras maps
        self.evidence = ScoreSums(AGREES, per_class=trust.per_class)  # the maps' with the model's own evidence
        self.trusted = ScoreSums(1.0, per_class=trust.per_class)  # each map's verdict: 1 to trust, 0 not
        self.folders: Counter[str] = Counter()
        self.blank = self.compared = self.disagreements = self.withheld = 0

    @property
    def explained(self) -> int:
        return sum(self.folders.values())

    def add(self, record: SampleRecord, view: View | None = None) -> None:
        """One sample's record, and its map and image for the class summaries (if they are summed)."""
        if self.looks is not None and view is not None:
            self.looks.add(view)
        if self.weights is not None:
            self.weights.add(record.map.explained, record.weights, record.true_label)
        self.folders[record.folder] += 1
        self.blank += record.map.blank
        for name, faithfulness, evidence in self.scores(record):
            self.trust.add(name, faithfulness)
            self.evidence.add(name, evidence)
            verdict = trusted(faithfulness, evidence)
            self.trusted.add(name, None if verdict is None else float(verdict))
        if self.detection:
            self.detection.add(record)
        if record.agrees is not None:
            self.compared += 1
            self.disagreements += not record.agrees
        self.withheld += bool(record.withheld)
        for name, value in agreements(record):
            self.agreement.add(name, value)

    def tally(self, skipped: int) -> Tally:
        """How many samples went to each folder, were skipped, or got a blank map."""
        folders = self.folders
        return Tally(folders["correct"], folders["incorrect"], folders["unlabeled"], skipped, self.blank)

    def totals(self) -> Totals:
        detection = self.detection and self.detection.result()
        looks = self.looks and self.looks.result()
        weights = self.weights and self.weights.result()
        return Totals(
            self.trust.result(),
            detection,
            self._tflite(),
            looks,
            weights,
            evidence=self.evidence.result(),
            trusted=self.trusted.result(),
        )

    def _tflite(self) -> TfliteTotals | None:
        """The TFLite model's agreement with the Keras model over the samples it ran on, or why it
        did not run; None without one."""
        comparison = self.tflite
        if comparison is None:
            return None
        if comparison.model is None:
            return TfliteTotals(comparison.name, problem=comparison.problem)
        kind = comparison.model.kind
        figures = (self.compared, self.disagreements, "", comparison.twin_shown, self.agreement.result(), self.withheld)
        return TfliteTotals(comparison.name, kind, *figures)
