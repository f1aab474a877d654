"""Run totals and warnings: pure functions of the sample records (no TensorFlow, no files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradcam.engine.fomo import Counts
from gradcam.job.records import (
    DetectionRow,
    DetectionTotals,
    SampleRecord,
    Skipped,
    Tally,
    TfliteTotals,
    Trust,
    TrustRow,
)

if TYPE_CHECKING:
    from gradcam.engine.tflite import Comparison

MIN_RESOLUTION = 6  # heatmaps coarser than this (cells on the short side) get a warning


def tally(records: Sequence[SampleRecord], skipped: Sequence[Skipped]) -> Tally:
    """How many samples went to each folder, were skipped, or got a blank map."""
    folders = Counter(r.folder for r in records)
    blank = sum(r.map.blank for r in records)
    return Tally(folders["correct"], folders["incorrect"], folders["unlabeled"], len(skipped), blank)


def trust(scores: Iterable[tuple[str, float | None]], threshold: float, per_class: bool) -> Trust | None:
    """How many maps to trust (faithfulness >= threshold) and their mean score, in all and, when
    per_class, per class; scores: (the class a map explains, its faithfulness or None). None when
    no map was scored."""
    groups: dict[str, list[float]] = {}
    for name, value in scores:
        if value is not None:
            groups.setdefault(name, []).append(value)
    if not groups:
        return None

    def row(values: list[float]) -> TrustRow:
        return TrustRow(len(values), sum(v >= threshold for v in values), float(np.mean(values)))

    every = [v for name in groups for v in groups[name]]
    classes = {name: row(groups[name]) for name in sorted(groups)} if per_class else {}
    return Trust(threshold, row(every), classes)


def map_scores(records: Sequence[SampleRecord]) -> list[tuple[str, float | None]]:
    """Each sample's map: the class it explains and its faithfulness."""
    return [(r.map.explained, r.map.faithfulness) for r in records]


def object_scores(records: Sequence[SampleRecord]) -> list[tuple[str, float | None]]:
    """Each object's map (FOMO): its class and its faithfulness."""
    return [(o.label, o.faithfulness) for r in records if r.detection for o in r.detection.objects]


def detection(records: Sequence[SampleRecord], threshold: float) -> DetectionTotals:
    """Object detection over the labelled images: counts, and the share of found objects whose map
    peaks inside their box, in all and per class."""
    counts: dict[str, Counts] = {}
    peaks: dict[str, list[bool]] = {}
    for r in records:
        if r.answer.correct is None or r.detection is None:
            continue
        for o in r.detection.objects:
            add = Counts(int(o.matched), int(o.kind == "detection" and not o.matched), int(o.kind == "missed"))
            counts[o.label] = counts.get(o.label, Counts(0, 0, 0)) + add
            if o.matched:
                peaks.setdefault(o.label, []).append(bool(o.peak_in_box))

    def row(c: Counts, inside: list[bool]) -> DetectionRow:
        return DetectionRow(c, sum(inside) / len(inside) if inside else None)

    total = sum(counts.values(), Counts(0, 0, 0))
    every = [p for label in sorted(peaks) for p in peaks[label]]
    classes = {label: row(counts[label], peaks.get(label, [])) for label in sorted(counts)}
    return DetectionTotals(threshold, row(total, every), classes)


def tflite(comparison: Comparison | None, records: Sequence[SampleRecord]) -> TfliteTotals | None:
    """The TFLite model's agreement with the Keras model over the samples it ran on, or why it did
    not run; None without one."""
    if comparison is None:
        return None
    if comparison.model is None:
        return TfliteTotals(comparison.name, problem=comparison.problem)
    answers = [r.agrees for r in records if r.agrees is not None]
    return TfliteTotals(comparison.name, comparison.model.kind, len(answers), answers.count(False))


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
    height, width = resolution
    if min(height, width) >= MIN_RESOLUTION:
        return None
    return (
        f"the heatmaps are only {height}x{width} cells ({layer}): each cell covers a large part of "
        "the image, so they cannot point at small objects; --layer auto explains finer layers "
        "(--list-layers shows them)"
    )


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
        f"{total.maps - total.trusted} of {total.maps} maps score a faithfulness below {totals.threshold}: "
        "deleting what they highlight changes the answer little more than deleting what they leave out, so "
        'they say little about why the model answered (the report\'s "maps not to trust")'
    )


def tflite_warning(totals: TfliteTotals | None) -> str | None:
    if totals is None or not totals.problem:
        return None
    return f"{totals.problem}: the TFLite columns are empty"


def warnings(*found: str | None) -> list[str]:
    """The warnings that apply, in order."""
    return [w for w in found if w]
