"""The log's closing lines: counts, totals, stage times, and the warnings last, where a reader of
Studio's log looks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcam.job.run import Summary

log = logging.getLogger("gradcam")


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def log_summary(summary: Summary) -> None:
    """The log's closing lines: counts, totals, stage times, and the warnings last."""
    info = summary.info
    tally, kind = info.tally, info.totals
    labelled = tally.correct + tally.incorrect
    accuracy = f", accuracy {tally.correct / labelled:.1%}" if labelled else ""
    log.info(
        "done: %d correct, %d incorrect, %d unlabeled, %d skipped%s",
        tally.correct,
        tally.incorrect,
        tally.unlabeled,
        tally.skipped,
        accuracy,
    )
    for skipped in info.skipped:
        log.info("skipped %s: %s", skipped.source, skipped.reason)
    if kind.detection:
        counts = kind.detection.total.counts
        rates = (_share(counts.precision), _share(counts.recall), _share(counts.f1))
        log.info(
            "objects: %d found, %d false, %d missed; precision %s, recall %s, F1 %s",
            counts.tp,
            counts.fp,
            counts.fn,
            *rates,
        )
    if kind.trusted:
        log.info("maps to trust: %d of %d", kind.trusted.total.passed, kind.trusted.total.maps)
    if kind.trust:
        total = kind.trust.total
        log.info(
            "faithfulness: mean %.2f; %d of %d maps >= %s", total.mean, total.passed, total.maps, kind.trust.threshold
        )
    if kind.evidence:
        total, explained = kind.evidence.total, info.tally.correct + info.tally.incorrect + info.tally.unlabeled
        budget = "" if total.maps == explained else " (an evenly spread share, within the time budget: --evidence all)"
        log.info(
            "evidence: %d of %d checked maps agree with the model's own (>= %s, mean %.2f); %d of %d maps checked%s",
            total.passed,
            total.maps,
            kind.evidence.threshold,
            total.mean,
            total.maps,
            explained,
            budget,
        )
    tflite = kind.tflite
    if tflite and tflite.compared:
        log.info(
            "%s (%s): agrees with %s on %d of %d images; %d disagreements",
            tflite.model,
            tflite.kind,
            tflite.against,
            tflite.compared - tflite.disagreements,
            tflite.compared,
            tflite.disagreements,
        )
    if tflite and tflite.maps:
        row = tflite.maps.total
        log.info(
            "%s maps: agree with the Keras maps on %d of %d (map agreement >= %s, mean %.2f); %d withheld",
            tflite.kind,
            row.passed,
            row.maps,
            tflite.maps.threshold,
            row.mean,
            tflite.withheld,
        )
    log.info("stage times: %s", ", ".join(f"{k} {v:.1f}s" for k, v in summary.stage_times.items()))
    log.info("wrote %s", summary.zip_path)
    for warning in info.warnings:  # last, where a reader of Studio's log looks
        log.warning("WARNING: %s", warning)
