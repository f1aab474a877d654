"""The job's steps for models with one answer per image: classification, binary and regression.

One batch through the model: the CAM pass (with the faithfulness passes, and a mistake's contrast
map) and the TFLite model beside it. One sample's maps back on its image: its record (the answer
judged against the label, the TFLite model's, the map's facts) and its pictures.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.engine.faithfulness import TRUST_THRESHOLD
from gradcam.engine.tasks import Answer
from gradcam.engine.tflite import Comparison
from gradcam.explainer import Explainer
from gradcam.explanation import Explanation, SampleMaps
from gradcam.job import totals
from gradcam.job.inputs import FrameMap, ImageInputs, Prepared, in_original
from gradcam.job.looks import SIDE, ClassLooks, View
from gradcam.job.pictures import PictureOptions, caption, draw, tflite_kind
from gradcam.job.records import MapFacts, Outcome, Pictures, Rendered, SampleRecord

ModelOutput = tuple[SampleMaps, np.ndarray | None]  # a sample's maps, and the TFLite model's outputs if it ran


class ClassifyStages:
    """Classification, binary and regression models on images."""

    detection = False  # deploy.zip's results have no detection columns
    windows = False  # nor audio windows' columns

    def __init__(
        self,
        explainer: Explainer,
        inputs: ImageInputs,
        pictures: PictureOptions,
        target_class: str | None = None,
        threshold: float = 0.1,
        tflite: Comparison | None = None,
    ):
        """target_class: the class every map explains (None: the prediction); threshold: the error up
        to which a regression answer counts as correct; tflite: the TFLite model to run beside."""
        self.explainer, self.inputs, self.pictures = explainer, inputs, pictures
        self.target = explainer.target_index(target_class)
        self.threshold = threshold
        self.tflite = tflite
        self.by_label = explainer.task.classifies  # a folder per true label
        self.frame = self._frame()  # the class summaries' (height, width); None: none

    def problem(self, sample: Sample) -> str | None:
        """Why a sample cannot be judged (a regression label that is not a number); None: it can."""
        return None if sample.label is None else self.explainer.task.label_problem(sample.label)

    def prepare(self, sample: Sample) -> Prepared:
        return self.inputs.prepare(sample)

    def run(self, batch: list[Prepared]) -> list[ModelOutput]:
        """One batch through the CAM pass and, if there is one, the TFLite model."""
        explainer = self.explainer
        inputs = np.stack([p.inputs for p in batch])
        truths = np.array([explainer.task.truth(p.sample.label, explainer.classes) for p in batch], np.int32)
        maps = explainer.maps(inputs, np.full(len(batch), self.target, np.int32), truths)
        model = self.tflite and self.tflite.model
        outputs = list(model.predict(inputs)) if model else [None] * len(batch)
        return list(zip(maps, outputs, strict=True))

    def render(self, prepared: Prepared, output: ModelOutput) -> Rendered:
        """One sample's maps on its image: its record and its pictures (in blend layout, a mistake's
        contrast map gets a picture of its own; a panel shows both maps)."""
        maps, tflite_outputs = output
        explanation = self.explainer.finish(prepared.image, prepared.geometry, maps)
        record = self._record(prepared, explanation, tflite_outputs)
        view = self._view(prepared, explanation)
        if not self.pictures.wanted(record):
            return Rendered(record, Pictures(None), view)
        shown = self._shown(explanation)
        overlay = draw(shown, self.pictures, caption(record, tflite_kind(self.tflite)))
        contrast = shown.contrast
        if contrast is None or self.pictures.layout == "panel":
            return Rendered(record, Pictures(overlay), view)
        return Rendered(record, Pictures(overlay, draw(contrast, self.pictures)), view)

    def _frame(self) -> tuple[int, int] | None:
        """The class summaries' frame (height, width): the model's input, at most looks.SIDE pixels on
        its long side; None: no summaries."""
        spec = self.explainer.spec
        factor = min(1.0, SIDE / max(spec.width, spec.height))
        return max(1, round(spec.height * factor)), max(1, round(spec.width * factor))

    def _view(self, prepared: Prepared, explanation: Explanation) -> View | None:
        """The sample's map (and a mistake's true-class map), image and boxes in the summaries' frame."""
        if self.frame is None:
            return None
        spec, (height, width) = self.explainer.spec, self.frame
        to_frame = FrameMap(prepared.geometry, (spec.width, spec.height), (width, height))
        contrast = explanation.contrast
        return View(
            explanation.explained,
            cv2.resize(explanation.cam, (width, height), interpolation=cv2.INTER_LINEAR),
            to_frame.image(prepared.image),
            contrast and contrast.explained,
            contrast and cv2.resize(contrast.cam, (width, height), interpolation=cv2.INTER_LINEAR),
            to_frame.boxes(prepared.sample.boxes, prepared.original, prepared.image.shape),
            to_frame.seen(prepared.image.shape),
        )

    def _shown(self, explanation: Explanation) -> Explanation:
        """The explanation as its pictures show it: as it is, for an image."""
        return explanation

    def _record(self, prepared: Prepared, explanation: Explanation, tflite_outputs: np.ndarray | None) -> SampleRecord:
        sample, answer = prepared.sample, explanation.answer
        peak = explanation.peak and in_original(explanation.peak, explanation.image.shape, prepared.original)
        contrast = explanation.contrast and explanation.contrast.faithfulness
        facts = MapFacts(explanation.explained, peak, explanation.blank, explanation.faithfulness, contrast)
        judged, tflite, agrees = self._judged(answer, sample.label), None, None
        if tflite_outputs is not None:
            tflite_answer = self.explainer.answer(tflite_outputs)
            tflite = self._judged(tflite_answer, sample.label)
            agrees = self.explainer.task.agrees(answer, tflite_answer, self.threshold)
        return SampleRecord(sample.path, sample.category, sample.label, judged, facts, tflite, agrees)

    def _judged(self, answer: Answer, label: str | None) -> Outcome:
        task = self.explainer.task
        correct, error = (None, None) if label is None else task.judge(answer, label, self.threshold)
        names = task.score_names(self.explainer.classes)
        scores = {name: float(score) for name, score in zip(names, answer.scores, strict=False)}
        confidence = None if math.isnan(answer.confidence) else answer.confidence
        return Outcome(answer.label, confidence, correct, error, scores)

    def close(self) -> None:
        """Nothing held."""

    def running_totals(self) -> totals.RunningTotals:
        trust = totals.TrustSums(TRUST_THRESHOLD, per_class=self.explainer.task.classifies)
        spec = self.explainer.spec
        looks = ClassLooks(self.frame, (spec.width, spec.height)) if self.frame else None
        return totals.RunningTotals(totals.map_scores, trust, self.tflite, looks=looks)
