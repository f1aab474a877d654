"""Run totals, summed record by record as the job writes them, and warnings: pure code (no
TensorFlow, no files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from gradcam.engine.agreement import ELSEWHERE
from gradcam.engine.fomo import Counts
from gradcam.engine.layers import cells
from gradcam.job.looks import ClassLooks, Looks, View
from gradcam.job.records import (
    DetectionRow,
    DetectionTotals,
    PerClass,
    SampleRecord,
    ScoreRow,
    Tally,
    TfliteTotals,
    Totals,
    Trust,
)

if TYPE_CHECKING:
    from gradcam.job.beside import Comparison

# A warning when the TFLite maps look elsewhere on at least this share: a well-calibrated int8 model's do on
# 1-9% of the images of bench/agreement_threshold.py's cases.
ELSEWHERE_SHARE = 0.2
MIN_RESOLUTION = 6  # heatmaps coarser than this (cells on the short side) get a warning


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


def map_scores(record: SampleRecord) -> list[tuple[str, float | None]]:
    """A sample's map: the class it explains and its faithfulness."""
    return [(record.map.explained, record.map.faithfulness)]


def object_scores(record: SampleRecord) -> list[tuple[str, float | None]]:
    """Each object's map (FOMO): its class and its faithfulness."""
    return [(o.label, o.faithfulness) for o in record.detection.objects] if record.detection else []


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
        scores: Callable[[SampleRecord], Iterable[tuple[str, float | None]]],
        trust: ScoreSums,
        tflite: Comparison | None = None,
        detection: DetectionSums | None = None,
        looks: ClassLooks | None = None,
    ):
        self.scores, self.trust, self.tflite, self.detection = scores, trust, tflite, detection
        self.looks = looks
        self.agreement = ScoreSums(ELSEWHERE, per_class=trust.per_class)  # the TFLite maps' with the Keras maps
        self.folders: Counter[str] = Counter()
        self.blank = self.compared = self.disagreements = self.withheld = 0

    @property
    def explained(self) -> int:
        return sum(self.folders.values())

    def add(self, record: SampleRecord, view: View | None = None) -> None:
        """One sample's record, and its map and image for the class summaries (if they are summed)."""
        if self.looks is not None and view is not None:
            self.looks.add(view)
        self.folders[record.folder] += 1
        self.blank += record.map.blank
        for name, value in self.scores(record):
            self.trust.add(name, value)
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
        return Totals(self.trust.result(), detection, self._tflite(), looks)

    def _tflite(self) -> TfliteTotals | None:
        """The TFLite model's agreement with the Keras model over the samples it ran on, or why it
        did not run; None without one."""
        comparison = self.tflite
        if comparison is None:
            return None
        if comparison.model is None:
            return TfliteTotals(comparison.name, problem=comparison.problem)
        kind = comparison.model.kind
        figures = (self.compared, self.disagreements, "", comparison.against, self.agreement.result(), self.withheld)
        return TfliteTotals(comparison.name, kind, *figures)


# --- Warnings: what a person reading the results should know before trusting the maps ---


def label_warning(unknown: Counter[str], classes: Sequence[str], objects: bool = False) -> str | None:
    """Dataset labels that are not model classes (unknown: label -> count), with the class they may
    have meant; their samples can only count as incorrect. objects: the labels are object boxes'."""
    if not unknown:
        return None
    folded = {name.strip().casefold(): name for name in classes}

    def described(label: str, count: int) -> str:
        guess = folded.get(label.strip().casefold())
        return f"{label!r} ({count} image{'s' * (count > 1)}{f', did you mean {guess!r}?' if guess else ''})"

    listed = ", ".join(described(label, count) for label, count in unknown.most_common())
    what = "object boxes have" if objects else "images have"
    return (
        f"{sum(unknown.values())} {what} a label that is not one of the model's classes "
        f"({', '.join(classes)}): {listed}; they count as incorrect"
    )


def named_warning(named: int, images: int) -> str | None:
    """Images whose labels came from their file names, info.labels not listing them."""
    if not named:
        return None
    return (
        f"{named} of {images} images are not listed in info.labels: their labels were taken from their file "
        "names (the part before the first dot); check them, or export the dataset from Edge Impulse"
    )


def coarse_warning(resolution: tuple[int, int], layer: str) -> str | None:
    """Maps too coarse to point at anything small; a 1-D map (frames x 1) is judged along time."""
    height, width = resolution
    if cells(height, width) >= MIN_RESOLUTION:
        return None
    if width == 1:
        return (
            f"the heatmaps are only {height} cells along time ({layer}): each covers a large part of the "
            "window, so they cannot point at short sounds; --layer auto explains finer layers "
            "(--list-layers shows them)"
        )
    return (
        f"the heatmaps are only {height}x{width} cells ({layer}): each cell covers a large part of "
        "the image, so they cannot point at small objects; --layer auto explains finer layers "
        "(--list-layers shows them)"
    )


def _where(box: tuple[int, int, int, int], size: tuple[int, int]) -> str:
    """Where a box sits in a frame of this (width, height), in words: top-left, centre, ..."""
    x, y, w, h = box
    column = min(2, int(3 * (x + w / 2) / size[0]))
    row = min(2, int(3 * (y + h / 2) / size[1]))
    words = [["top-left", "top", "top-right"], ["left", "centre", "right"], ["bottom-left", "bottom", "bottom-right"]]
    return words[row][column]


def shortcut_warnings(looks: Looks | None) -> list[str]:
    """One line per class whose maps keep landing on a patch whose pixels hardly change."""
    if looks is None:
        return []
    lines = []
    for look in looks.shortcuts:
        box = looks.in_input(look.candidate.region)
        lines.append(
            f"class {look.name!r}: in {look.candidate.share:.0%} of its images the map sits on the same "
            f"{box[2]}x{box[3]} patch at the {_where(box, looks.input_size)} (x {box[0]}, y {box[1]} of the "
            f"{looks.input_size[0]}x{looks.input_size[1]} input), whose pixels are nearly identical in every image: "
            "the model may be reading an artefact, not the object"
        )
    for look in looks.outside:
        lines.append(
            f"class {look.name!r}: its maps put {look.heat_in_boxes:.0%} of their heat inside the objects' boxes, "
            f"which cover {look.box_area:.0%} of the images ({look.boxed} images with boxes): no more than a map "
            "spread evenly would; the model may be looking at the background, not the object"
        )
    return lines


def blank_warning(counts: Tally, explained: int, target_class: str | None) -> str | None:
    if not counts.blank:
        return None
    target = target_class or "the predicted class"
    return (
        f"{counts.blank} of {explained} heatmaps are blank: nothing in those images raised "
        f"the score of {target} (marked `blank` in results.csv and the report)"
    )


def trust_warning(totals: Trust | None) -> str | None:
    if totals is None or totals.total.share >= 0.5:
        return None
    total = totals.total
    return (
        f"{total.maps - total.passed} of {total.maps} maps score a faithfulness below {totals.threshold}: "
        "deleting what they highlight changes the answer little more than deleting what they leave out, so "
        'they say little about why the model answered (the report\'s "maps not to trust")'
    )


def tflite_warning(totals: TfliteTotals | None) -> str | None:
    if totals is None or not totals.problem:
        return None
    return f"{totals.problem}: the TFLite columns are empty"


def elsewhere_warning(totals: TfliteTotals | None) -> str | None:
    """The TFLite model's maps disagree with the Keras model's on a notable share of samples."""
    agreement = totals and totals.maps
    row = agreement and agreement.total
    if not row or row.maps - row.passed < ELSEWHERE_SHARE * row.maps:
        return None
    return (
        f"the {totals.kind} model looks elsewhere than the Keras model on {row.maps - row.passed} of {row.maps} maps "
        f"(map agreement below {agreement.threshold}): its quantization changed what it attends to; compare the two "
        'maps in the report (filter "int8 looks elsewhere")'
    )


def withheld_warning(totals: TfliteTotals | None) -> str | None:
    """Samples whose twin's outputs were not LiteRT's: their TFLite maps are not shown."""
    if not totals or not totals.withheld:
        return None
    return (
        f"on {totals.withheld} of {totals.compared} samples the TFLite twin's outputs are not LiteRT's: their "
        "TFLite maps are withheld (column tflite_map_withheld says why)"
    )


def warnings(*found: str | None) -> list[str]:
    """The warnings that apply, in order."""
    return [w for w in found if w]
