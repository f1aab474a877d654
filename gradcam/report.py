"""deploy.zip: overlays split into correct/ incorrect/ unlabeled/ by true label, plus results files
(results.csv, results.json, index.html; objects.csv for object detection).

The zip is written under a temporary name and renamed at the end, so a crash never leaves a
half-written deploy.zip behind.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from gradcam.errors import GradcamError

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
    "tflite_predicted",
    "tflite_confidence",
    "tflite_error",
    "agrees",
)  # then one `score:<class>` column per class (regression: `score:value`, the raw output)
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
)


@dataclass
class Result:
    """One explained sample, as reported."""

    source: str
    category: str
    true_label: str | None
    predicted: str
    confidence: float | None
    correct: bool | None  # None: unlabeled
    scores: dict[str, float]
    peak_x: int | None  # None: the map is all zero (nothing in the image raised the score)
    peak_y: int | None
    error: float | None = None  # regression: |predicted - true|
    blank: bool = False  # the map is all zero: nothing in the image raised the explained score
    faithfulness: float | None = None  # -1..1, gradcam.faithfulness; None: not measured
    # The TFLite model's answer (None: not run): its prediction, confidence, regression error, and
    # whether it agrees with the Keras model (regression: within the error threshold of it).
    tflite_predicted: str | None = None
    tflite_confidence: float | None = None
    tflite_error: float | None = None
    agrees: bool | None = None
    # Object detection (FOMO): the image's counts and rates (None: unlabeled or not a detector), and
    # every detection and missed box with its map's peak (gradcam.detection.ObjectMap.as_dict).
    true_positives: int | None = None
    false_positives: int | None = None
    false_negatives: int | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    objects: list[dict] = field(default_factory=list)
    overlay: str = ""
    # A mistake's map of its true class, in blend layout (a panel draws both maps in one picture).
    true_class_overlay: str = ""

    @property
    def folder(self) -> str:
        if self.correct is None:
            return "unlabeled"
        return "correct" if self.correct else "incorrect"


@dataclass
class RunInfo:
    """What the run was: for results.json and the report's header."""

    model: str
    layer: str
    task: str
    method: str
    classes: list[str]
    parameters: dict
    skipped: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)  # deepest first: name, type, size, method
    last_conv: dict = field(default_factory=dict)  # name, size
    resolution: str = ""  # h x w of the explained map
    warnings: list[str] = field(default_factory=list)
    tflite: dict = field(default_factory=dict)  # model, type, compared, disagreements, agreement; or problem
    detection: dict = field(default_factory=dict)  # object detection: threshold, totals and per class
    faithfulness: dict = field(default_factory=dict)  # threshold, share of maps to trust, mean; in all and per class


TEMPLATE = Path(__file__).with_name("report.html")


def render_html(document: dict) -> str:
    """index.html: the template with the run's data embedded as JSON that cannot close its script tag."""
    data = json.dumps(document, allow_nan=False, default=str)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = html.escape(f"Grad-CAM report: {document['run']['model']}")
    return TEMPLATE.read_text().replace("{{TITLE}}", title).replace("{{DATA}}", data)


def _safe(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned[:80] or "_"


def _table(fields, rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class DeployZip:
    """Collects overlays and results; `close` writes the results and moves the zip into place."""

    def __init__(self, path: str | Path, by_label: bool = True, detection: bool = False):
        """by_label: one sub-folder per label (classification); regression and detection have none.
        detection: results.csv gets the detection columns, and objects.csv is written."""
        self.path = Path(path)
        self.by_label = by_label
        self.detection = detection
        self._partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._zip = zipfile.ZipFile(self._partial, "w", zipfile.ZIP_DEFLATED)
        except OSError as exc:
            raise GradcamError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._names: set[str] = set()
        self.results: list[Result] = []

    def _unique(self, folder: str, stem: str, suffix: str) -> str:
        name, n = f"{folder}/{stem}{suffix}", 1
        while name in self._names:
            n += 1
            name = f"{folder}/{stem}-{n}{suffix}"
        self._names.add(name)
        return name

    def add(self, result: Result, image: bytes, true_class_image: bytes | None = None) -> str:
        """Store an encoded overlay (already compressed: stored as is) under a unique, traceable name,
        and beside it the overlay of the true class's map, if given."""
        label = result.true_label if result.correct is not None else result.predicted
        stem = PurePosixPath(result.source).name.split(".ingestion-")[0]
        confidence = f"-{result.confidence:.2f}" if result.confidence is not None else ""
        found = sum(o["kind"] == "detection" for o in result.objects)
        tag = f"found-{found}" if self.detection else f"pred-{result.predicted}{confidence}"
        folder = f"{result.folder}/{_safe(label or '_')}" if self.by_label else result.folder
        result.overlay = self._store(folder, _safe(f"{stem}.{tag}"), image)
        if true_class_image is not None:
            result.true_class_overlay = self._store(folder, _safe(f"{stem}.true-{result.true_label}"), true_class_image)
        self.results.append(result)
        return result.overlay

    def _store(self, folder: str, stem: str, image: bytes) -> str:
        name = self._unique(folder, stem, ".jpg")
        self._zip.writestr(name, image, compress_type=zipfile.ZIP_STORED)
        return name

    def _csv(self) -> str:
        classes = list(dict.fromkeys(name for r in self.results for name in r.scores))
        fields = [*RESULT_FIELDS, *(DETECTION_FIELDS if self.detection else ()), *(f"score:{c}" for c in classes)]
        rows = [
            {k: v for k, v in asdict(r).items() if k in fields} | {f"score:{c}": s for c, s in r.scores.items()}
            for r in self.results
        ]
        return _table(fields, rows)

    def _objects_csv(self) -> str:
        rows = []
        for r in self.results:
            for o in r.objects:
                box = {f"box_{k}": v for k, v in (o["box"] or {}).items()}
                rows.append({"source": r.source, **{k: v for k, v in o.items() if k != "box"}, **box})
        return _table(OBJECT_FIELDS, rows)

    def close(self, info: RunInfo) -> Path:
        self._zip.writestr("results.csv", self._csv())
        if self.detection:
            self._zip.writestr("objects.csv", self._objects_csv())
        document = {"run": asdict(info), "results": [asdict(r) for r in self.results]}
        self._zip.writestr("results.json", json.dumps(document, indent=1, allow_nan=False, default=str))
        self._zip.writestr("index.html", render_html(document))
        self._zip.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        self._zip.close()
        self._partial.unlink(missing_ok=True)
