"""Records -> the rows and documents of results.csv, results.json and objects.csv. The only place
where records become dicts and numbers are rounded (scores and rates to 6 decimals, points to 0.1
pixel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from gradcam.engine.fomo import Counts
from gradcam.job.records import (
    DetectionRow,
    ObjectRecord,
    PerClass,
    RunInfo,
    SampleRecord,
    ScoreRow,
    TfliteMap,
    TfliteTotals,
    WindowFacts,
)
from gradcam.report.numbers import rounded
from gradcam.report.summaries import class_looks, class_weights

if TYPE_CHECKING:
    from gradcam.engine.calibration import Candidate, Choice

RESULT_FIELDS = (
    "source",
    "category",
    "true_label",
    "predicted",
    "confidence",
    "correct",
    "error",
    "overlay",
    "true_class_overlay",
    "peak_x",
    "peak_y",
    "blank",
    "faithfulness",
    "true_class_faithfulness",
    "evidence",
    "true_class_evidence",
    "trusted",
    "tflite_predicted",
    "tflite_confidence",
    "tflite_error",
    "agrees",
    "tflite_overlay",
    "tflite_peak_x",
    "tflite_peak_y",
    "tflite_faithfulness",
    "map_agreement",
    "tflite_map_withheld",
)  # then one `score:<class>` column per class (regression: `score:value`, the raw output)
# Audio (feature) runs add each window's origin and the map's peak along it.
WINDOW_FIELDS = (
    "sample_id",
    "start_ms",
    "end_ms",
    "peak_block",
    "peak_frame",
    "peak_ms",
    "peak_filter",
    "peak_hz",
    "peak_feature",
    "audio",
)
# Object detection runs add per image counts and rates, and write every object to objects.csv.
DETECTION_FIELDS = ("true_positives", "false_positives", "false_negatives", "precision", "recall", "f1")
OBJECT_FIELDS = (
    "source",
    "kind",
    "label",
    "confidence",
    "x",
    "y",
    "box_label",
    "box_x",
    "box_y",
    "box_width",
    "box_height",
    "peak_x",
    "peak_y",
    "peak_in_box",
    "blank",
    "faithfulness",
    "tflite_peak_x",
    "tflite_peak_y",
    "tflite_peak_in_box",
    "map_agreement",
)


def _point(p: tuple[float, float] | None) -> tuple[float | None, float | None]:
    return (None, None) if p is None else (round(p[0], 1), round(p[1], 1))


def _rates(counts: Counts | None) -> dict:
    if counts is None:
        return dict.fromkeys(DETECTION_FIELDS)
    return {
        "true_positives": counts.tp,
        "false_positives": counts.fp,
        "false_negatives": counts.fn,
        "precision": rounded(counts.precision),
        "recall": rounded(counts.recall),
        "f1": rounded(counts.f1),
    }


def object_row(o: ObjectRecord) -> dict:
    """One detection or missed box, as results.json lists it."""
    (x, y), (peak_x, peak_y) = _point(o.centroid), _point(o.peak)
    return {
        "kind": o.kind,
        "label": o.label,
        "confidence": rounded(o.confidence),
        "x": x,
        "y": y,
        "box": None if o.box is None else o.box.as_dict(),
        "peak_x": peak_x,
        "peak_y": peak_y,
        "peak_in_box": o.peak_in_box,
        "blank": o.peak is None,
        "faithfulness": o.faithfulness,
        **_tflite_map(o.tflite, in_box=True),
    }


def _tflite_map(found: TfliteMap | None, in_box: bool = False) -> dict:
    """The TFLite model's own map: its peak, its faithfulness (a sample's) or whether its peak is in
    the box (an object's), and its agreement with the Keras map."""
    x, y = _point(found and found.peak)
    name, value = ("tflite_peak_in_box", "peak_in_box") if in_box else ("tflite_faithfulness", "faithfulness")
    return {
        "tflite_peak_x": x,
        "tflite_peak_y": y,
        name: found and getattr(found, value),
        "map_agreement": found and rounded(found.agreement),
    }


def result_row(
    record: SampleRecord, overlay: str, true_class_overlay: str = "", audio: str = "", tflite_overlay: str = ""
) -> dict:
    """One sample, as results.json lists it (results.csv takes its columns from it); audio: an audio
    window's sound in deploy.zip; tflite_overlay: the TFLite model's own map's picture."""
    answer, tflite, facts = record.answer, record.tflite, record.map
    peak = facts.peak or (None, None)
    detection = record.detection
    return {
        "source": record.source,
        "category": record.category,
        "true_label": record.true_label,
        "predicted": answer.predicted,
        "confidence": rounded(answer.confidence),
        "correct": answer.correct,
        "scores": {name: round(score, 6) for name, score in answer.scores.items()},
        "peak_x": peak[0],
        "peak_y": peak[1],
        "error": rounded(answer.error),
        "blank": facts.blank,
        "faithfulness": facts.faithfulness,
        "true_class_faithfulness": facts.contrast_faithfulness,
        "evidence": rounded(facts.evidence),
        "true_class_evidence": rounded(facts.contrast_evidence),
        "trusted": facts.trusted,
        "tflite_predicted": tflite and tflite.predicted,
        "tflite_confidence": tflite and rounded(tflite.confidence),
        "tflite_error": tflite and rounded(tflite.error),
        "agrees": record.agrees,
        "tflite_overlay": tflite_overlay,
        **_tflite_map(record.tflite_map),
        "tflite_map_withheld": record.withheld,
        **_rates(detection and detection.counts),
        "objects": [object_row(o) for o in detection.objects] if detection else [],
        "overlay": overlay,
        "true_class_overlay": true_class_overlay,
        **_window(record.window, audio),
    }


def _window(facts: WindowFacts | None, audio: str) -> dict:
    if facts is None:
        return {}
    return asdict(facts) | {"peak_hz": None if facts.peak_hz is None else round(facts.peak_hz, 1), "audio": audio}


def csv_row(row: dict, fields: list[str]) -> dict:
    """A results.json row as a results.csv row: its columns and one score column per class."""
    return {k: v for k, v in row.items() if k in fields} | {f"score:{c}": s for c, s in row["scores"].items()}


def object_csv_rows(row: dict) -> list[dict]:
    """The objects of a results.json row as objects.csv rows."""
    return [
        {"source": row["source"], **{k: v for k, v in o.items() if k != "box"}}
        | {f"box_{k}": v for k, v in (o["box"] or {}).items()}
        for o in row["objects"]
    ]


def _trust_row(row: ScoreRow) -> dict:
    return {"maps": row.maps, "trusted": row.passed, "share": rounded(row.share), "mean": rounded(row.mean)}


def _evidence_row(row: ScoreRow) -> dict:
    """The maps checked against the model's own evidence: how many, how many agree, and the mean."""
    return {"maps": row.maps, "agree": row.passed, "share": rounded(row.share), "mean": rounded(row.mean)}


def _verdict_row(row: ScoreRow) -> dict:
    return {"maps": row.maps, "trusted": row.passed, "share": rounded(row.share)}


def _choice(choice: Choice | None) -> dict:
    """What `--method auto` chose, on how many samples, and every candidate's agreement."""
    if choice is None:
        return {}

    def candidate(c: Candidate) -> dict:
        return {"method": c.method, "layer": c.layer, "layers": c.layers, "agreement": rounded(c.agreement)}

    return {
        "chosen": candidate(choice.chosen),
        "candidates": [candidate(c) for c in choice.candidates],
        "samples": choice.samples,
        "seconds": round(choice.seconds, 2),
        "silent": choice.silent,
    }


def _detection_row(row: DetectionRow) -> dict:
    return _rates(row.counts) | {"peak_in_box": rounded(row.peak_in_box)}


def _per_class(totals: PerClass | None, row: Callable[[ScoreRow | DetectionRow], dict]) -> dict:
    if totals is None:
        return {}
    classes = {name: row(figures) for name, figures in totals.classes.items()}
    return {"threshold": totals.threshold, "total": row(totals.total), "classes": classes}


def _tflite(totals: TfliteTotals | None) -> dict:
    if totals is None:
        return {}
    if totals.problem:
        return {"model": totals.model, "problem": totals.problem}
    return {
        "model": totals.model,
        "type": totals.kind,
        "compared": totals.compared,
        "against": "twin" if totals.twin_shown else "keras",
        "disagreements": totals.disagreements,
        "agreement": rounded(totals.agreement),
        "maps": _per_class(totals.maps, _agreement_row),
        "withheld": totals.withheld,
    }


def _agreement_row(row: ScoreRow) -> dict:
    """The TFLite maps of some samples: how many, how many look elsewhere, and the mean agreement."""
    elsewhere = row.maps - row.passed
    return {"maps": row.maps, "elsewhere": elsewhere, "share": rounded(elsewhere / row.maps), "mean": rounded(row.mean)}


def run_document(info: RunInfo, tiles: dict[tuple[str, str], str] | None = None) -> dict:
    """The run, as results.json's `run` gives it; tiles: the class summaries' tiles' names."""
    return {
        "model": info.model,
        "layer": info.layer,
        "task": info.task,
        "method": info.method,
        "classes": info.classes,
        "parameters": info.parameters,
        "skipped": [asdict(s) for s in info.skipped],
        "counts": asdict(info.tally),
        "layers": info.layers,
        "last_conv": info.last_conv,
        "resolution": info.resolution,
        "warnings": info.warnings,
        "tflite": _tflite(info.totals.tflite),
        "detection": _per_class(info.totals.detection, _detection_row),
        "faithfulness": _per_class(info.totals.trust, _trust_row),
        "evidence": _per_class(info.totals.evidence, _evidence_row),
        "trusted": _per_class(info.totals.trusted, _verdict_row),
        "auto": _choice(info.choice),
        **({"looks": class_looks(info.totals.looks, tiles or {})} if info.totals.looks else {}),
        **({"weights": class_weights(info.totals.weights)} if info.totals.weights else {}),
    }
