"""deploy.zip: overlays split into correct/ incorrect/ unlabeled/ by true label, plus results files
(results.csv, results.json, index.html; objects.csv for object detection).

The zip is written under a temporary name and renamed at the end, so a crash never leaves a
half-written deploy.zip behind; the report's data chunks are inside it, and the rows kept for the
results files are in an unnamed temporary file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from gradcam import stopping
from gradcam.errors import GradcamError
from gradcam.job.records import Pictures, RunInfo, SampleRecord
from gradcam.report.columns import (
    DETECTION_FIELDS,
    OBJECT_FIELDS,
    RESULT_FIELDS,
    WINDOW_FIELDS,
    csv_row,
    object_csv_rows,
    result_row,
    run_document,
)
from gradcam.report.page import PageData, render_html


def _safe(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned[:80] or "_"


class DeployZip:
    """Writes overlays and the report's data chunks as the samples come, keeps their rows on disk;
    `close` writes the results files and moves the zip into place. Nothing per sample stays in
    memory but the zip's own list of entries (its central directory, written last)."""

    def __init__(self, path: str | Path, by_label: bool = True, detection: bool = False, windows: bool = False):
        """by_label: one sub-folder per label (classification); regression and detection have none.
        detection: results.csv gets the detection columns, and objects.csv is written. windows:
        results.csv gets the audio windows' columns."""
        self.path = Path(path)
        self.by_label = by_label
        self.detection = detection
        self.windows = windows
        self._partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._zip = zipfile.ZipFile(self._partial, "w", zipfile.ZIP_DEFLATED)
        except OSError as exc:
            raise GradcamError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        # results.json's rows, one JSON line each, in the order the samples were added: an unnamed
        # file that the system removes however the job ends.
        self._rows = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in close or abort)
        self._scores: dict[str, None] = {}  # results.csv's score columns, in the order met
        self.page = PageData(self._zip.writestr, classifies=by_label, detection=detection, windows=windows)

    def _unique(self, folder: str, stem: str, suffix: str) -> str:
        """A name not yet in the zip (whose own index of entries is the record of names taken)."""
        name, n = f"{folder}/{stem}{suffix}", 1
        while self._taken(name):
            n += 1
            name = f"{folder}/{stem}-{n}{suffix}"
        return name

    def _taken(self, name: str) -> bool:
        try:
            self._zip.getinfo(name)
        except KeyError:
            return False
        return True

    @stopping.deferred()  # a stop lands between samples, never inside a zip entry
    def add(self, record: SampleRecord, pictures: Pictures) -> str:
        """Store a sample's encoded overlay (already compressed: stored as is), if it has one, under a
        unique, traceable name, and beside it the overlay of a mistake's contrast map and the TFLite
        model's own map, if given; returns the overlay's name ("" without one)."""
        answer = record.answer
        label = record.true_label if answer.correct is not None else answer.predicted
        stem = PurePosixPath(record.source).name.split(".ingestion-")[0]
        if record.detection is not None:
            tag = f"found-{sum(o.kind == 'detection' for o in record.detection.objects)}"
        else:
            confidence = f"-{answer.confidence:.2f}" if answer.confidence is not None else ""
            tag = f"pred-{answer.predicted}{confidence}"
        folder = f"{record.folder}/{_safe(label or '_')}" if self.by_label else record.folder
        overlay = contrast = tflite = ""
        if pictures.overlay is not None:
            overlay = self._store(folder, _safe(f"{stem}.{tag}"), pictures.overlay)
        if pictures.contrast is not None:
            contrast = self._store(folder, _safe(f"{stem}.true-{record.true_label}"), pictures.contrast)
        if pictures.tflite is not None:
            tflite = self._store(folder, _safe(f"{stem}.tflite-{tag}"), pictures.tflite)
        sound, data = pictures.sound or ("", None)
        if data is not None:
            self._zip.writestr(sound, data)
        row = result_row(record, overlay, contrast, sound, tflite)
        self._rows.write(json.dumps(row, allow_nan=False, default=str) + "\n")
        self._scores.update(dict.fromkeys(row["scores"]))
        self.page.add(row)
        return overlay

    def _store(self, folder: str, stem: str, image: bytes) -> str:
        name = self._unique(folder, stem, ".jpg")
        self._zip.writestr(name, image, compress_type=zipfile.ZIP_STORED)
        return name

    def _each_row(self) -> Iterator[dict]:
        self._rows.seek(0)
        for line in self._rows:
            yield json.loads(line)

    def _write_csv(self, name: str, fields: list[str], rows: Iterable[dict]) -> None:
        with self._zip.open(name, "w", force_zip64=True) as entry, io.TextIOWrapper(entry, "utf-8", newline="") as text:
            writer = csv.DictWriter(text, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def _write_json(self, run: dict) -> None:
        """results.json, byte for byte what `json.dumps({"run": run, "results": rows}, indent=1)`
        gives, the rows streamed from disk."""
        head = json.dumps({"run": run, "results": []}, indent=1, allow_nan=False, default=str)
        head = head.removesuffix("[]\n}")
        with self._zip.open("results.json", "w", force_zip64=True) as entry, io.TextIOWrapper(entry, "utf-8") as out:
            out.write(head)
            separator = "[\n  "
            for row in self._each_row():
                out.write(separator + json.dumps(row, indent=1, allow_nan=False).replace("\n", "\n  "))
                separator = ",\n  "
            out.write("[]\n}" if separator.startswith("[") else "\n ]\n}")

    @stopping.deferred()
    def add_tiles(self, tiles: dict[tuple[str, str], bytes]) -> dict[tuple[str, str], str]:
        """Store the class summaries' tiles, keyed by (group, class): their names in the zip."""
        return {key: self._store(f"classes/{key[0]}", _safe(key[1]), tile) for key, tile in tiles.items()}

    def close(self, info: RunInfo, tiles: dict[tuple[str, str], str] | None = None) -> Path:
        """tiles: the class summaries' tiles' names (add_tiles)."""
        extra = (*(DETECTION_FIELDS if self.detection else ()), *(WINDOW_FIELDS if self.windows else ()))
        fields = [*RESULT_FIELDS, *extra, *(f"score:{c}" for c in self._scores)]
        with stopping.deferred():  # a stop during the last entries lands before the zip is moved into place
            self._write_csv("results.csv", fields, (csv_row(row, fields) for row in self._each_row()))
            if self.detection:
                objects = (o for row in self._each_row() for o in object_csv_rows(row))
                self._write_csv("objects.csv", list(OBJECT_FIELDS), objects)
            run = run_document(info, tiles or {})
            self._write_json(run)
            self._zip.writestr("index.html", render_html(run, self.page.close()))
            self._zip.close()
        self._rows.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        """Remove the half-written zip, in whatever state the stop left it: a write cut short by an
        error (a full disk; signals wait for the write to end) leaves an open writing handle, and
        the zip then refuses to close (ValueError)."""
        with contextlib.suppress(ValueError, OSError):
            self._zip.close()
        self._rows.close()
        self._partial.unlink(missing_ok=True)
