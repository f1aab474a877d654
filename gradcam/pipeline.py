"""The job: stream samples -> decode and preprocess -> batched CAM -> overlays -> deploy.zip.

Decoding and overlay/encoding run in a small thread pool (OpenCV releases the GIL) while the
model works on the current batch; at most a few batches are in flight, so memory does not grow
with the dataset.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gradcam.dataset import Dataset, Sample, open_dataset
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.model import load_model
from gradcam.progress import Progress
from gradcam.report import DeployZip, Result, RunInfo
from gradcam.settings import Settings

log = logging.getLogger("gradcam")
JPEG_QUALITY = 90
LAYOUTS = ("blend", "panel")


@dataclass
class Summary:
    """What a run produced."""

    zip_path: Path
    results: list[Result]
    skipped: list[tuple[str, str]]
    stages: dict[str, float] = field(default_factory=dict)

    def count(self, folder: str) -> int:
        return sum(r.folder == folder for r in self.results)


@dataclass
class _Prepared:
    sample: Sample
    image: np.ndarray | None = None
    inputs: np.ndarray | None = None
    geometry: object = None
    reason: str = ""


class _Stages:
    """Seconds spent per stage, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, start: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def _decode(dataset: Dataset, sample: Sample, explainer: Explainer, stages: _Stages) -> _Prepared:
    start = time.perf_counter()
    try:
        data = dataset.read(sample)
    except (OSError, KeyError) as exc:
        return _Prepared(sample, reason=f"cannot read the file ({exc})")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return _Prepared(sample, reason="not a decodable image (corrupt or unsupported format)")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    inputs, geometry = explainer.prepare(image)
    stages.add("decode", start)
    return _Prepared(sample, image, inputs, geometry)


def _true_value(explainer: Explainer, label: str | None) -> float | None:
    if label is None or explainer.task != "regression":
        return None
    return float(label)


def _result(explanation, sample: Sample, explainer: Explainer, threshold: float) -> Result:
    scores = explanation.scores
    names = explainer.classes if explainer.task != "regression" else ["value"]
    correct, error = None, None
    if sample.label is not None and explainer.task == "regression":
        error = abs(float(explanation.prediction) - float(sample.label))
        correct = error <= threshold
    elif sample.label is not None:
        correct = explanation.label == sample.label
    confidence = None if math.isnan(explanation.confidence) else round(explanation.confidence, 6)
    peak = explanation.peak
    return Result(
        source=sample.path,
        category=sample.category,
        true_label=sample.label,
        predicted=explanation.label,
        confidence=confidence,
        correct=correct,
        scores={n: round(float(s), 6) for n, s in zip(names, scores, strict=False)},
        peak_x=peak[0] if peak else None,
        peak_y=peak[1] if peak else None,
        error=None if error is None else round(error, 6),
    )


def _render(explainer: Explainer, prepared: _Prepared, maps, settings: Settings, stages: _Stages):
    start = time.perf_counter()
    cam, scores, probabilities = maps
    explanation = explainer.finish(prepared.image, prepared.geometry, cam, scores, probabilities)
    result = _result(explanation, prepared.sample, explainer, settings.regression_threshold)
    if settings.layout == "panel":
        truth = prepared.sample.label if prepared.sample.label is not None else "unlabeled"
        confidence = "" if result.confidence is None else f" ({result.confidence:.0%})"
        picture = explanation.panel(settings.alpha, f"true: {truth}  predicted: {result.predicted}{confidence}")
    else:
        picture = explanation.overlay(settings.alpha)
    _ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    stages.add("overlay+encode", start)
    return result, encoded.tobytes()


def _batches(samples: list[Sample], size: int) -> Iterator[list[Sample]]:
    for i in range(0, len(samples), size):
        yield samples[i : i + size]


def _validate_labels(dataset: Dataset, explainer: Explainer) -> list[tuple[str, str]]:
    """Regression labels must be numbers: others are skipped with the reason."""
    if explainer.task != "regression":
        return []
    skipped, kept = [], []
    for sample in dataset.samples:
        try:
            _true_value(explainer, sample.label)
            kept.append(sample)
        except ValueError:
            skipped.append((sample.path, f"regression label {sample.label!r} is not a number"))
    dataset.samples = kept
    return skipped


def explain_dataset(explainer: Explainer, dataset: Dataset, settings: Settings) -> Summary:
    """Explain every sample of `dataset` and write settings.zip_path."""
    if settings.layout not in LAYOUTS:
        raise GradcamError(f"layout {settings.layout!r}: expected one of {', '.join(LAYOUTS)}")
    if settings.batch_size < 1:
        raise GradcamError(f"batch size {settings.batch_size}: expected a positive number")
    skipped = list(dataset.skipped) + _validate_labels(dataset, explainer)
    target = explainer.target_index(settings.target_class)
    stages = _Stages()
    output = DeployZip(settings.zip_path)
    progress = Progress(len(dataset.samples), "explaining")
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            decoding: deque[list[Future]] = deque()
            rendering: deque[list[Future]] = deque()
            batches = _batches(dataset.samples, settings.batch_size)

            def read_ahead() -> None:
                batch = next(batches, None)
                if batch is not None:
                    decoding.append([pool.submit(_decode, dataset, s, explainer, stages) for s in batch])

            def write(futures: list[Future]) -> None:
                for future in futures:
                    result, picture = future.result()
                    start = time.perf_counter()
                    output.add(result, picture)
                    stages.add("zip", start)
                    progress.update()

            read_ahead()
            read_ahead()
            while decoding:
                prepared = [f.result() for f in decoding.popleft()]
                read_ahead()
                for p in prepared:
                    if p.reason:
                        skipped.append((p.sample.path, p.reason))
                        progress.update()
                good = [p for p in prepared if not p.reason]
                if good:
                    start = time.perf_counter()
                    batch = explainer.run(np.stack([p.inputs for p in good]), np.full(len(good), target, np.int32))
                    stages.add("model", start)
                    rendering.append(
                        [
                            pool.submit(
                                _render,
                                explainer,
                                p,
                                (batch.maps[i], batch.scores[i], batch.probabilities[i]),
                                settings,
                                stages,
                            )
                            for i, p in enumerate(good)
                        ]
                    )
                while len(rendering) > 1:
                    write(rendering.popleft())
            while rendering:
                write(rendering.popleft())
        elapsed = progress.close()
        info = RunInfo(
            model=str(settings.model.name if settings.model else ""),
            layer=explainer.layer_name,
            task=explainer.task,
            method=explainer.method,
            classes=explainer.classes,
            parameters=settings.parameters(),
            skipped=[{"source": s, "reason": r} for s, r in skipped],
        )
        summary = Summary(settings.zip_path, output.results, skipped, dict(stages.seconds, total=elapsed))
        info.counts = {f: summary.count(f) for f in ("correct", "incorrect", "unlabeled")} | {"skipped": len(skipped)}
        output.close(info)
        return summary
    except BaseException:
        output.abort()
        raise


def build_explainer(settings: Settings, model, classes: list[str] | None) -> Explainer:
    return Explainer(model, classes, **settings.explainer_options())


def run(settings: Settings) -> Summary:
    """The job on a local model and dataset (the sources fetch them from Studio first)."""
    if settings.model is None or settings.dataset is None:
        raise GradcamError("nothing to explain: give --model and --dataset, --api-key, or --metadata")
    model = load_model(settings.model)
    with open_dataset(settings.dataset, settings.category) as dataset:
        explainer = build_explainer(settings, model, settings.classes or dataset.labels or None)
        log.info("explaining layer %s (%s, %s)", explainer.layer_name, explainer.task, explainer.method)
        return explain_dataset(explainer, dataset, settings)
