"""The job: stream samples -> decode and preprocess -> batched CAM -> overlays -> deploy.zip.

Decoding and overlay/encoding run in a small thread pool (OpenCV releases the GIL) while the
model works on the current batch; at most a few batches are in flight, so memory does not grow
with the dataset.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gradcam import detection
from gradcam.dataset import Dataset, Sample, open_dataset
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer, Explanation, Maps
from gradcam.faithfulness import TRUST_THRESHOLD
from gradcam.fomo import Counts
from gradcam.images import decode, downscale
from gradcam.model import load_model
from gradcam.preprocess import Geometry, display_image
from gradcam.progress import Progress
from gradcam.report import DeployZip, Result, RunInfo
from gradcam.settings import Settings
from gradcam.tasks import Answer, Task
from gradcam.tflite import Comparison, TfliteModel

log = logging.getLogger("gradcam")
JPEG_QUALITY = 90
LAYOUTS = ("blend", "panel")
# A reduced JPEG decode stays at least this many times the model's input size: the model input
# then matches the full decode's within a few grey levels (tests/test_images.py).
DECODE_MARGIN = 8
MIN_RESOLUTION = 6  # heatmaps coarser than this (cells on the short side) get a warning


@dataclass
class Summary:
    """What a run produced."""

    zip_path: Path
    results: list[Result]
    skipped: list[tuple[str, str]]
    stages: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what a reader should know before trusting the maps
    tflite: dict = field(default_factory=dict)  # the TFLite comparison, as in results.json
    detection: dict = field(default_factory=dict)  # object detection: threshold, totals, per class
    faithfulness: dict = field(default_factory=dict)  # maps to trust: threshold, in all and per explained class

    def count(self, folder: str) -> int:
        return sum(r.folder == folder for r in self.results)

    @property
    def blank(self) -> int:
        """How many heatmaps are all zero."""
        return sum(r.blank for r in self.results)


@dataclass
class _Prepared:
    sample: Sample
    image: np.ndarray | None = None  # as shown in the overlay: at most --max-overlay-size on its long side
    inputs: np.ndarray | None = None
    geometry: Geometry | None = None  # of the model input in `image`
    original: tuple[int, int] = (0, 0)  # (width, height) of the image in the file
    reason: str = ""


class _Stages:
    """Seconds spent per stage, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed


def _decode(dataset: Dataset, sample: Sample, explainer: Explainer, max_side: int, stages: _Stages) -> _Prepared:
    """Read, decode (a large JPEG reduced, never below the overlay's or the model's size) and
    preprocess one sample; the image kept for the overlay is at most max_side on its long side."""
    start = time.perf_counter()
    try:
        data = dataset.read(sample)
    except (OSError, KeyError) as exc:
        return _Prepared(sample, reason=f"cannot read the file ({exc})")
    model_side = max(explainer.spec.width, explainer.spec.height)
    decoded = decode(data, max(max_side, DECODE_MARGIN * model_side) if max_side else 0)
    if decoded is None:
        return _Prepared(sample, reason="not a decodable image (corrupt or unsupported format)")
    inputs, geometry = explainer.prepare(decoded.image)
    shown = downscale(decoded.image, max_side)
    (height, width), (shown_height, shown_width) = decoded.image.shape[:2], shown.shape[:2]
    geometry = geometry.resized(shown_width / width, shown_height / height)
    stages.add("decode", start)
    return _Prepared(sample, shown, inputs, geometry, decoded.original)


def _in_original(point: tuple[int, int], shown: tuple[int, ...], original: tuple[int, int]) -> tuple[int, int]:
    """A pixel of the image as shown -> the pixel of the image in the file under its centre."""
    (x, y), (height, width) = point, shown[:2]
    return min(int((x + 0.5) * original[0] / width), original[0] - 1), min(
        int((y + 0.5) * original[1] / height), original[1] - 1
    )


def _rounded(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 6)


def _compared(task: Task, answer: Answer, device: Answer, truth: str | None, threshold: float) -> dict:
    """The TFLite model's answer for one sample, beside the Keras model's: Result fields."""
    _, error = (None, None) if truth is None else task.judge(device, truth, threshold)
    return {
        "tflite_predicted": device.label,
        "tflite_confidence": _rounded(device.confidence),
        "tflite_error": _rounded(error),
        "agrees": task.agrees(answer, device, threshold),
    }


def _result(
    explanation: Explanation,
    prepared: _Prepared,
    explainer: Explainer,
    threshold: float,
    device: np.ndarray | None = None,
) -> Result:
    sample, task, answer = prepared.sample, explainer.task, explanation.answer
    faithful = explanation.faithfulness
    correct, error = (None, None) if sample.label is None else task.judge(answer, sample.label, threshold)
    names = task.score_names(explainer.classes)
    peak = explanation.peak and _in_original(explanation.peak, explanation.image.shape, prepared.original)
    compared = {} if device is None else _compared(task, answer, explainer.answer(device), sample.label, threshold)
    return Result(
        source=sample.path,
        category=sample.category,
        true_label=sample.label,
        predicted=answer.label,
        confidence=_rounded(answer.confidence),
        correct=correct,
        scores={n: round(float(s), 6) for n, s in zip(names, answer.scores, strict=False)},
        peak_x=peak[0] if peak else None,
        peak_y=peak[1] if peak else None,
        error=_rounded(error),
        blank=explanation.empty,
        faithfulness=None if faithful is None else round(faithful, 4),
        **compared,
    )


def caption(result: Result, device_kind: str = "tflite") -> str:
    """The panel's caption: true label, prediction, and the TFLite model's where it disagrees."""

    def answer(label: str | None, confidence: float | None) -> str:
        return f"{label}{'' if confidence is None else f' ({confidence:.0%})'}"

    truth = result.true_label if result.true_label is not None else "unlabeled"
    text = f"true: {truth}  predicted: {answer(result.predicted, result.confidence)}"
    if result.agrees is False:
        text += f"  {device_kind}: {answer(result.tflite_predicted, result.tflite_confidence)}"
    if result.faithfulness is not None:
        text += f"  trust {result.faithfulness:.2f}{'' if result.faithfulness >= TRUST_THRESHOLD else ' (low)'}"
    return text


def _render(
    explainer: Explainer,
    prepared: _Prepared,
    maps: Maps,
    device: np.ndarray | None,
    device_kind: str,
    settings: Settings,
    stages: _Stages,
) -> tuple[Result, bytes, bytes | None]:
    """One sample's maps on its original image, drawn and encoded as JPEG: (Result, picture, the true
    class's picture in blend layout for a mistake, else None). device: the TFLite model's outputs
    for this sample, if it ran; device_kind: its type."""
    start = time.perf_counter()
    explanation = explainer.finish(prepared.image, prepared.geometry, maps)
    result = _result(explanation, prepared, explainer, settings.regression_threshold, device)
    picture = _picture(explanation, settings, caption(result, device_kind), stages, start)
    contrast = explanation.contrast
    if contrast is None or settings.layout == "panel":  # a panel shows both maps
        return result, picture, None
    return result, picture, _picture(contrast, settings, "", stages, time.perf_counter())


def _picture(explanation, settings: Settings, text: str, stages: _Stages, start: float) -> bytes:
    """The overlay (or the panel, captioned) as JPEG bytes."""
    picture = (
        explanation.panel(settings.alpha, text) if settings.layout == "panel" else explanation.overlay(settings.alpha)
    )
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    _ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    stages.add("overlay+encode", start)
    return encoded.tobytes()


def _object_result(explanation: detection.DetectionExplanation, sample: Sample) -> Result:
    """An object detection sample as reported: its counts and every object."""
    found = [o for o in explanation.objects if o.kind == "detection"]
    counts = explanation.counts
    rates = {} if counts is None else {"precision": counts.precision, "recall": counts.recall, "f1": counts.f1}
    return Result(
        source=sample.path,
        category=sample.category,
        true_label=None if sample.boxes is None else ", ".join(sorted(b.label for b in sample.boxes)),
        predicted=", ".join(o.label for o in found) or "nothing",
        confidence=_rounded(max((o.confidence for o in found), default=None)),
        correct=explanation.correct,
        scores={},
        peak_x=None,
        peak_y=None,
        blank=bool(explanation.objects) and all(o.peak is None for o in explanation.objects),
        true_positives=None if counts is None else counts.tp,
        false_positives=None if counts is None else counts.fp,
        false_negatives=None if counts is None else counts.fn,
        **{k: _rounded(v) for k, v in rates.items()},
        objects=[o.as_dict() for o in explanation.objects],
    )


def object_caption(result: Result) -> str:
    """The panel's caption for object detection: what was found against the boxes."""
    if result.correct is None:
        return f"unlabeled  detected: {result.predicted}"
    return (
        f"boxes: {result.true_positives + result.false_negatives}  found: {result.true_positives}  "
        f"false: {result.false_positives}  missed: {result.false_negatives}"
    )


def _render_objects(explainer: Explainer, prepared: _Prepared, outputs: tuple, settings: Settings, stages: _Stages):
    """One FOMO sample's objects and maps on its image, drawn and encoded as JPEG: (Result, bytes)."""
    start = time.perf_counter()
    frame, plan, cams = outputs
    explanation = detection.finish(display_image(prepared.image, explainer.spec), frame, plan, cams)
    result = _object_result(explanation, prepared.sample)
    return result, _picture(explanation, settings, object_caption(result), stages, start), None


def _object_pass(
    explainer: Explainer, good: list[_Prepared], threshold: float, stages: _Stages
) -> list[tuple[detection.Frame, detection.Plan, list[np.ndarray]]]:
    """One FOMO batch: decode every sample, explain every object: per sample (frame, plan, maps)."""
    start = time.perf_counter()
    frames = [explainer.frame((p.image.shape[1], p.image.shape[0]), p.geometry, p.original) for p in good]
    inputs = np.stack([p.inputs for p in good])
    explained = explainer.run_objects(inputs, frames, [p.sample.boxes for p in good], threshold)
    stages.add("model", start)
    return [(frame, plan, cams) for frame, (plan, cams) in zip(frames, explained, strict=True)]


def _usable(dataset: Dataset, task: Task) -> tuple[list[Sample], list[tuple[str, str]]]:
    """The samples to explain, and the skipped ones with reasons (regression labels must be numbers)."""
    samples, skipped = [], list(dataset.skipped)
    for sample in dataset.samples:
        problem = sample.label is not None and task.label_problem(sample.label)
        if problem:
            skipped.append((sample.path, problem))
        else:
            samples.append(sample)
    return samples, skipped


def _decoded_batches(pool: ThreadPoolExecutor, decode, samples: list[Sample], size: int) -> Iterator[list[_Prepared]]:
    """Batches of decoded samples; the next batch decodes in the pool while the caller uses this one."""
    batches = (samples[i : i + size] for i in range(0, len(samples), size))
    pending: deque[list[Future]] = deque()
    for batch in itertools.islice(batches, 2):
        pending.append([pool.submit(decode, s) for s in batch])
    while pending:
        current = pending.popleft()
        upcoming = next(batches, None)
        if upcoming is not None:
            pending.append([pool.submit(decode, s) for s in upcoming])
        yield [f.result() for f in current]


def _model_pass(
    explainer: Explainer, device: TfliteModel | None, good: list[_Prepared], target: int, stages: _Stages
) -> list[tuple[Maps, np.ndarray | None]]:
    """One batch through the CAM pass (with the faithfulness passes, and the true class's map of each
    mistake) and, if there is one, the TFLite model: per sample, its maps and the TFLite model's
    outputs or None."""
    start = time.perf_counter()
    inputs = np.stack([p.inputs for p in good])
    truths = np.array([explainer.task.truth(p.sample.label, explainer.classes) for p in good], np.int32)
    maps = explainer.maps(inputs, np.full(len(good), target, np.int32), truths)
    stages.add("model", start)
    answers = [None] * len(good)
    if device:
        start = time.perf_counter()
        answers = list(device.predict(inputs))
        stages.add("tflite", start)
    return list(zip(maps, answers, strict=True))


def explain_dataset(
    explainer: Explainer, dataset: Dataset, settings: Settings, comparison: Comparison | None = None
) -> Summary:
    """Explain every sample of `dataset` and write settings.zip_path; with a comparison, run its
    TFLite model on the same inputs too.

    At most two batches are decoding and one batch is rendering while the model runs, so memory
    stays flat however large the dataset is.
    """
    device = comparison.model if comparison else None
    device_kind = device.kind if device else "tflite"
    if settings.layout not in LAYOUTS:
        raise GradcamError(f"layout {settings.layout!r}: expected one of {', '.join(LAYOUTS)}")
    if settings.batch_size < 1:
        raise GradcamError(f"batch size {settings.batch_size}: expected a positive number")
    samples, skipped = _usable(dataset, explainer.task)
    target = explainer.target_index(settings.target_class)
    stages = _Stages()
    detects = explainer.task.detects
    output = DeployZip(settings.zip_path, by_label=explainer.task.by_label, detection=detects)
    progress = Progress(len(samples), "explaining")

    def write(futures: list[Future]) -> None:
        for future in futures:
            result, picture, true_class_picture = future.result()
            start = time.perf_counter()
            output.add(result, picture, true_class_picture)
            stages.add("zip", start)
            progress.update()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            rendering: deque[list[Future]] = deque()
            decode = functools.partial(
                _decode, dataset, explainer=explainer, max_side=settings.max_overlay_size, stages=stages
            )
            for prepared in _decoded_batches(pool, decode, samples, settings.batch_size):
                for p in prepared:
                    if p.reason:
                        skipped.append((p.sample.path, p.reason))
                        progress.update()
                good = [p for p in prepared if not p.reason]
                if good and detects:
                    outputs = _object_pass(explainer, good, settings.detection_threshold, stages)
                    rendering.append(
                        [
                            pool.submit(_render_objects, explainer, p, out, settings, stages)
                            for p, out in zip(good, outputs, strict=True)
                        ]
                    )
                elif good:
                    outputs = _model_pass(explainer, device, good, target, stages)
                    rendering.append(
                        [
                            pool.submit(_render, explainer, p, maps, answer, device_kind, settings, stages)
                            for p, (maps, answer) in zip(good, outputs, strict=True)
                        ]
                    )
                while len(rendering) > 1:
                    write(rendering.popleft())
            while rendering:
                write(rendering.popleft())
        summary = Summary(settings.zip_path, output.results, skipped, dict(stages.seconds, total=progress.close()))
        summary.tflite = _tflite_summary(comparison, summary.results)
        summary.detection = _detection_summary(settings, summary.results) if detects else {}
        summary.faithfulness = _faithfulness_summary(summary.results, settings.target_class, explainer.task.by_label)
        summary.warnings = _warnings(explainer, settings, summary, samples)
        output.close(_run_info(explainer, settings, summary))
        return summary
    except BaseException:
        output.abort()
        raise


def _run_info(explainer: Explainer, settings: Settings, summary: Summary) -> RunInfo:
    counts = {f: summary.count(f) for f in ("correct", "incorrect", "unlabeled")}
    return RunInfo(
        model=settings.model.name if settings.model else "",
        layer=explainer.layer_name,
        task=explainer.task.name,
        method=explainer.method,
        classes=explainer.classes,
        parameters=settings.parameters(),
        skipped=[{"source": s, "reason": r} for s, r in summary.skipped],
        counts=counts | {"skipped": len(summary.skipped), "blank": summary.blank},
        layers=explainer.layers(),
        last_conv=explainer.last_conv(),
        resolution="x".join(map(str, explainer.resolution)),
        warnings=summary.warnings,
        tflite=summary.tflite,
        detection=summary.detection,
        faithfulness=summary.faithfulness,
    )


def _coarse_warning(explainer: Explainer) -> str | None:
    height, width = explainer.resolution
    if min(height, width) >= MIN_RESOLUTION:
        return None
    return (
        f"the heatmaps are only {height}x{width} cells ({explainer.layer_name}): each cell covers a large part of "
        "the image, so they cannot point at small objects; --layer auto explains finer layers "
        "(--list-layers shows them)"
    )


def _blank_warning(settings: Settings, summary: Summary) -> str | None:
    if not summary.blank:
        return None
    target = settings.target_class or "the predicted class"
    return (
        f"{summary.blank} of {len(summary.results)} heatmaps are blank: nothing in those images raised "
        f"the score of {target} (marked `blank` in results.csv and the report)"
    )


def _trust_warning(summary: Summary) -> str | None:
    total = summary.faithfulness.get("total")
    if not total or total["share"] >= 0.5:
        return None
    return (
        f"{total['maps'] - total['trusted']} of {total['maps']} maps score a faithfulness below {TRUST_THRESHOLD}: "
        "deleting what they highlight changes the answer little more than deleting what they leave out, so "
        'they say little about why the model answered (the report\'s "maps not to trust")'
    )


def _label_warning(explainer: Explainer, samples: Iterable[Sample]) -> str | None:
    """Dataset labels that are not model classes, with counts and the class they may have meant;
    their images can only count as incorrect."""
    labels = [label for sample in samples for label in explainer.task.labels_of(sample)]
    unknown = Counter(explainer.task.unknown_labels(labels, explainer.classes))
    if not unknown:
        return None
    folded = {name.strip().casefold(): name for name in explainer.classes}

    def described(label: str, count: int) -> str:
        guess = folded.get(label.strip().casefold())
        return f"{label!r} ({count} image{'s' * (count > 1)}{f', did you mean {guess!r}?' if guess else ''})"

    listed = ", ".join(described(label, count) for label, count in unknown.most_common())
    what = "object boxes have" if explainer.task.detects else "images have"
    return (
        f"{sum(unknown.values())} {what} a label that is not one of the model's classes "
        f"({', '.join(explainer.classes)}): {listed}; they count as incorrect"
    )


def _warnings(explainer: Explainer, settings: Settings, summary: Summary, samples: list[Sample]) -> list[str]:
    """What a person reading the results should know before trusting the maps."""
    explained = {r.source for r in summary.results}
    labels = _label_warning(explainer, (s for s in samples if s.path in explained))
    tflite = summary.tflite.get("problem") and f"{summary.tflite['problem']}: the TFLite columns are empty"
    warnings = (labels, tflite, _coarse_warning(explainer), _blank_warning(settings, summary), _trust_warning(summary))
    return [w for w in warnings if w]


def _detection_summary(settings: Settings, results: list[Result]) -> dict:
    """Object detection over the labelled images: counts, rates and the share of found objects whose
    map peaks inside their box, in all and per class."""
    counts: dict[str, Counts] = {}
    peaks: dict[str, list[bool]] = {}
    for r in results:
        if r.correct is None:
            continue
        for o in r.objects:
            found, missed = o["kind"] == "detection" and o["box"] is not None, o["kind"] == "missed"
            add = Counts(int(found), int(o["kind"] == "detection" and not found), int(missed))
            counts[o["label"]] = counts.get(o["label"], Counts(0, 0, 0)) + add
            if found:
                peaks.setdefault(o["label"], []).append(bool(o["peak_in_box"]))

    def row(c: Counts, inside: list[bool]) -> dict:
        return {
            "true_positives": c.tp,
            "false_positives": c.fp,
            "false_negatives": c.fn,
            "precision": _rounded(c.precision),
            "recall": _rounded(c.recall),
            "f1": _rounded(c.f1),
            "peak_in_box": _rounded(sum(inside) / len(inside)) if inside else None,
        }

    total = sum(counts.values(), Counts(0, 0, 0))
    every = [p for label in sorted(peaks) for p in peaks[label]]
    return {
        "threshold": settings.detection_threshold,
        "total": row(total, every),
        "classes": {label: row(counts[label], peaks.get(label, [])) for label in sorted(counts)},
    }


def _faithfulness_summary(results: list[Result], target_class: str | None, per_class: bool) -> dict:
    """How many maps to trust (faithfulness >= TRUST_THRESHOLD) and their mean score, in all and per
    explained class (the predicted class, or --target-class); {} when not measured."""
    scored = [r for r in results if r.faithfulness is not None]
    if not scored:
        return {}

    def row(rows: list[Result]) -> dict:
        values = [r.faithfulness for r in rows]
        trusted = sum(v >= TRUST_THRESHOLD for v in values)
        return {
            "maps": len(rows),
            "trusted": trusted,
            "share": _rounded(trusted / len(rows)),
            "mean": _rounded(np.mean(values)),
        }

    groups: dict[str, list[Result]] = {}
    for r in scored:
        groups.setdefault(target_class or r.predicted, []).append(r)
    classes = {name: row(groups[name]) for name in sorted(groups)} if per_class else {}
    return {"threshold": TRUST_THRESHOLD, "total": row(scored), "classes": classes}


def _tflite_summary(comparison: Comparison | None, results: list[Result]) -> dict:
    if comparison is None:
        return {}
    if comparison.model is None:
        return {"model": comparison.name, "problem": comparison.problem}
    answers = [r.agrees for r in results if r.agrees is not None]
    disagreements = answers.count(False)
    return {
        "model": comparison.name,
        "type": comparison.model.kind,
        "compared": len(answers),
        "disagreements": disagreements,
        "agreement": round(1 - disagreements / len(answers), 6) if answers else None,
    }


def open_comparison(settings: Settings, explainer: Explainer) -> Comparison | None:
    """The TFLite model to compare with, checked against the Keras model. A problem is an error
    when --tflite named it, and a warning with Studio's own trained.tflite."""
    if settings.tflite is None or settings.no_tflite:
        return None
    name = settings.tflite.name
    if explainer.task.detects:
        log.info("%s is not compared: the TFLite comparison covers classification and regression only", name)
        return None
    try:
        model = TfliteModel.beside(settings.tflite, explainer.adapter)
    except GradcamError as exc:
        if settings.tflite_required:
            raise
        log.warning("warning: %s: the TFLite columns stay empty", exc)
        return Comparison(name, problem=str(exc))
    log.info("comparing with %s (%s) on every image", name, model.kind)
    return Comparison(name, model)


def _describe_layers(explainer: Explainer) -> str:
    layers = " x ".join(f"{layer['name']} ({layer['size']}, {layer['method']})" for layer in explainer.layers())
    last = explainer.last_conv()
    return f"explaining {layers}; the last conv is {last['name']} ({last['size']})"


def run(settings: Settings) -> Summary:
    """The job on a local model and dataset (the sources fetch them from Studio first)."""
    if settings.model is None or settings.dataset is None:
        raise GradcamError("nothing to explain: give --model and --dataset, --api-key, or --metadata")
    settings = settings.with_defaults()
    model = load_model(settings.model)
    with open_dataset(settings.dataset, settings.category) as dataset:
        explainer = Explainer(model, settings.classes or dataset.labels or None, **settings.explainer_options())
        comparison = open_comparison(settings, explainer)
        log.info("%s; task %s", _describe_layers(explainer), explainer.task.name)
        for warning in (_label_warning(explainer, dataset.samples), _coarse_warning(explainer)):
            if warning:
                log.warning("warning: %s", warning)
        return explain_dataset(explainer, dataset, settings, comparison)
