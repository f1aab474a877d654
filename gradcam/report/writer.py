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
from pathlib import Path, PurePosixPath

from gradcam.errors import GradcamError
from gradcam.job.records import Pictures, RunInfo, SampleRecord
from gradcam.report.columns import (
    DETECTION_FIELDS,
    OBJECT_FIELDS,
    RESULT_FIELDS,
    csv_row,
    object_csv_rows,
    result_row,
    run_document,
)

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
        self.rows: list[dict] = []  # results.json's rows, in the order the samples were added

    def _unique(self, folder: str, stem: str, suffix: str) -> str:
        name, n = f"{folder}/{stem}{suffix}", 1
        while name in self._names:
            n += 1
            name = f"{folder}/{stem}-{n}{suffix}"
        self._names.add(name)
        return name

    def add(self, record: SampleRecord, pictures: Pictures) -> str:
        """Store a sample's encoded overlay (already compressed: stored as is) under a unique,
        traceable name, and beside it the overlay of a mistake's contrast map, if given; returns
        the overlay's name."""
        answer = record.answer
        label = record.true_label if answer.correct is not None else answer.predicted
        stem = PurePosixPath(record.source).name.split(".ingestion-")[0]
        if record.detection is not None:
            tag = f"found-{sum(o.kind == 'detection' for o in record.detection.objects)}"
        else:
            confidence = f"-{answer.confidence:.2f}" if answer.confidence is not None else ""
            tag = f"pred-{answer.predicted}{confidence}"
        folder = f"{record.folder}/{_safe(label or '_')}" if self.by_label else record.folder
        overlay = self._store(folder, _safe(f"{stem}.{tag}"), pictures.overlay)
        contrast = ""
        if pictures.contrast is not None:
            contrast = self._store(folder, _safe(f"{stem}.true-{record.true_label}"), pictures.contrast)
        self.rows.append(result_row(record, overlay, contrast))
        return overlay

    def _store(self, folder: str, stem: str, image: bytes) -> str:
        name = self._unique(folder, stem, ".jpg")
        self._zip.writestr(name, image, compress_type=zipfile.ZIP_STORED)
        return name

    def _csv(self) -> str:
        classes = list(dict.fromkeys(name for row in self.rows for name in row["scores"]))
        fields = [*RESULT_FIELDS, *(DETECTION_FIELDS if self.detection else ()), *(f"score:{c}" for c in classes)]
        return _table(fields, [csv_row(row, fields) for row in self.rows])

    def _objects_csv(self) -> str:
        return _table(OBJECT_FIELDS, [o for row in self.rows for o in object_csv_rows(row)])

    def close(self, info: RunInfo) -> Path:
        self._zip.writestr("results.csv", self._csv())
        if self.detection:
            self._zip.writestr("objects.csv", self._objects_csv())
        document = {"run": run_document(info), "results": self.rows}
        self._zip.writestr("results.json", json.dumps(document, indent=1, allow_nan=False, default=str))
        self._zip.writestr("index.html", render_html(document))
        self._zip.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        self._zip.close()
        self._partial.unlink(missing_ok=True)
