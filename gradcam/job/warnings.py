"""Warnings: what a person reading the results should know before trusting the maps. Pure
functions of the run's totals (gradcam.job.totals) and the dataset's labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gradcam.engine.layers import cells
from gradcam.job.looks import Looks
from gradcam.job.records import Tally, TfliteTotals, Trust

if TYPE_CHECKING:
    from gradcam.engine.calibration import Choice

MIN_RESOLUTION = 6  # heatmaps coarser than this (cells on the short side) get a warning
# A warning when the TFLite maps look elsewhere on at least this share: a well-calibrated int8 model's do on
# 1-9% of the images of bench/agreement_threshold.py's cases, a broken one's on 63-100%.
ELSEWHERE_SHARE = 0.2
# No warning about the maps' agreement with the model's evidence on fewer maps checked: a share of 4 says little.
MIN_CHECKED = 10


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
        if looks.windows:
            start, end = box[0] / looks.input_size[0], (box[0] + box[2]) / looks.input_size[0]
            lines.append(
                f"class {look.name!r}: in {look.candidate.share:.0%} of its windows the map sits on the same "
                f"frames, {start:.0%} to {end:.0%} into the window, at the {_where(box, looks.input_size)} of "
                "its picture, whose features are nearly identical in every window: the model may be reading an "
                "artefact (a click, a silence pad), not the sound"
            )
            continue
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


def evidence_warning(totals: Trust | None) -> str | None:
    """Most of the maps checked point where the model's own evidence is not (of MIN_CHECKED at least)."""
    if totals is None or totals.total.share >= 0.5 or totals.total.maps < MIN_CHECKED:
        return None
    total = totals.total
    return (
        f"on {total.maps - total.passed} of {total.maps} maps checked, hiding the part of the input under the map's "
        f"peak lowers the score by less than {totals.threshold:.0%} of what hiding another part does: those maps point "
        'where the model does not look (the report\'s "maps not to trust"); --method occlusion shows the evidence '
        "itself"
    )


def silent_warning(choice: Choice | None) -> str | None:
    """On most of auto's sample, hiding no single part of the input lowers the score."""
    if choice is None or choice.silent * 2 < choice.samples:
        return None
    return (
        f"on {choice.silent} of {choice.samples} samples, hiding any one part of the input does not lower the model's "
        "score: its answer rests on no single place, and a map of places says little about it"
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
