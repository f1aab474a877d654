"""The report's data, written as the rows come, so that the page costs the same at any size.

index.html holds the run and the figures summed here (confusion matrices, labels, mean error); the
rows go into deploy.zip as chunks of `<script>` files that the page loads from the unzipped folder
(over file://, where fetch() of local JSON is blocked):

- data/index-NNNN.js: INDEX_CHUNK samples each, what a gallery card, a filter, a sort and the
  search need (INDEX_FIELDS, as arrays); the page loads them all at once, a few bytes a sample;
- data/rows-NNNN.js: ROWS_CHUNK whole results.json rows each; loaded when a sample is opened.

index.html also holds the gallery's first page in its default order (the least confident first;
regression: the largest error first), kept as the rows come in a heap of PAGE_SIZE, so that the
page shows it at once, at any size, while the index loads.
"""

from __future__ import annotations

import heapq
import html
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

TEMPLATE = Path(__file__).with_name("report.html")
INDEX_CHUNK = 5000
ROWS_CHUNK = 500
PAGE_SIZE = 100  # gallery cards per page
INDEX_FIELDS = (
    "source",
    "overlay",
    "true_class_overlay",
    "true_label",
    "predicted",
    "confidence",
    "correct",
    "error",
    "blank",
    "faithfulness",
    "evidence",
    "tflite_predicted",
    "tflite_confidence",
    "tflite_error",
    "agrees",
    "tflite_overlay",
    "map_agreement",
    "tflite_map_withheld",
)
DETECTION_INDEX_FIELDS = ("true_positives", "false_positives", "false_negatives", "objects")
WINDOW_INDEX_FIELDS = ("start_ms", "end_ms", "peak_ms", "audio")  # audio: a card's time line, mark and player
MAX_PREDICTED = 200  # distinct answers offered as a filter (classes; more only with unknown labels)


def script_json(value) -> str:
    """JSON that cannot close the script tag it sits in."""
    text = json.dumps(value, allow_nan=False, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Chunks:
    """Rows gathered into numbered `<script>` files, each handed to `store` when full."""

    def __init__(self, kind: str, size: int, store: Callable[[str, str], None]):
        self.kind, self.size, self.store = kind, size, store
        self.count = 0  # chunks stored
        self._pending: list = []

    def add(self, item) -> None:
        self._pending.append(item)
        if len(self._pending) == self.size:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            # JSON in a string, parsed by JSON.parse: faster to load than the same data as a JS literal
            text = script_json(self._pending).replace("\\", "\\\\").replace("'", "\\'")
            call = f"gradcam.chunk({json.dumps(self.kind)},{self.count},'{text}');\n"
            self.store(f"data/{self.kind}-{self.count:04d}.js", call)
            self.count, self._pending = self.count + 1, []


class PageData:
    """The report's rows, chunked as they come, and the figures the page shows, summed as they come."""

    def __init__(self, store: Callable[[str, str], None], classifies: bool, detection: bool, windows: bool = False):
        """store(name, text): writes one file into deploy.zip. classifies: the answers are classes
        (a confusion matrix applies); detection: the rows carry objects; windows: audio windows."""
        self.classifies, self.detection = classifies, detection
        extra = (DETECTION_INDEX_FIELDS if detection else ()) + (WINDOW_INDEX_FIELDS if windows else ())
        self.fields = INDEX_FIELDS + extra
        self.index = Chunks("index", INDEX_CHUNK, store)
        self.rows = Chunks("rows", ROWS_CHUNK, store)
        self.samples = 0
        self.labels: dict[str, None] = {}  # true (and object) labels, in the order met
        self.predicted: dict[str, None] = {}
        self.confusion: Counter[tuple[str, str]] = Counter()  # (true label, predicted)
        self.tflite_confusion: Counter[tuple[str, str]] = Counter()  # (Keras, TFLite)
        self.errors = [0, 0.0]  # regression: labelled samples, sum of their errors
        self.regression = not classifies and not detection
        self._first: list[tuple] = []  # a heap of the default order's first page: (-key, entry)

    def add(self, row: dict) -> None:
        entry = [row[f] for f in self.fields]
        self._keep_if_first(row, entry)
        self.samples += 1
        self.index.add(entry)
        self.rows.add(row)
        truth = row["true_label"]
        if self.detection:  # the labels of an image's boxes, and of what was found in it
            labels = [o["label"] for o in row["objects"]] + (truth.split(", ") if truth else [])
        else:
            labels = [] if truth is None else [truth]
        for label in labels:
            self.labels.setdefault(label)
        if self.classifies:
            if len(self.predicted) < MAX_PREDICTED:
                self.predicted.setdefault(row["predicted"])
            if truth is not None:
                self.confusion[truth, row["predicted"]] += 1
            if row["agrees"] is not None:
                self.tflite_confusion[row["predicted"], row["tflite_predicted"]] += 1
        if row["error"] is not None:
            self.errors[0] += 1
            self.errors[1] += row["error"]

    def _keep_if_first(self, row: dict, entry: list) -> None:
        """The page's default sort as a key (a missing value first when ascending, last when
        descending; ties in the order met, as the page's stable sort keeps them)."""
        if self.regression:
            key = (-row["error"] if row["error"] is not None else math.inf, self.samples)
        else:
            key = (row["confidence"] if row["confidence"] is not None else -math.inf, self.samples)
        item = ((-key[0], -key[1]), entry)
        if len(self._first) < PAGE_SIZE:
            heapq.heappush(self._first, item)
        elif item[0] > self._first[0][0]:
            heapq.heapreplace(self._first, item)

    def close(self) -> dict:
        """Stores the last chunks; the page's own figures, for index.html."""
        self.index.flush()
        self.rows.flush()
        labelled, total = self.errors
        return {
            "samples": self.samples,
            "fields": self.fields,
            "chunks": {"index": self.index.count, "rows": self.rows.count, "rows_size": ROWS_CHUNK},
            "page_size": PAGE_SIZE,
            "first_page": [[-at, entry] for (_, at), entry in sorted(self._first, reverse=True)],
            "labels": list(self.labels),
            "predicted": list(self.predicted),
            "confusion": _nested(self.confusion),
            "tflite_confusion": _nested(self.tflite_confusion),
            "mean_error": total / labelled if labelled else None,
        }


def _nested(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (row, column), n in counts.items():
        table.setdefault(row, {})[column] = n
    return table


def render_html(run: dict, page: dict) -> str:
    """index.html: the template with the run and the page's figures embedded."""
    title = html.escape(f"Grad-CAM report: {run['model']}")
    data = script_json({"run": run, "page": page})
    return TEMPLATE.read_text().replace("{{TITLE}}", title).replace("{{DATA}}", data)
