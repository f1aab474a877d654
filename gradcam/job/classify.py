"""The job's steps for models with one answer per image: classification, binary and regression.

One batch through the model: the CAM pass (with the faithfulness passes, and a mistake's contrast
map) and the TFLite model beside it (LiteRT, and its twin's maps). One sample's maps back on its
image: its record (the answer judged against the label, the TFLite model's, the maps' facts and
how far they agree) and its pictures.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import cv2
import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.engine.agreement import map_agreement
from gradcam.engine.tasks import Answer
from gradcam.engine.trust import TRUST_THRESHOLD
from gradcam.explainer import Explainer
from gradcam.explanation import Explanation, SampleMaps
from gradcam.job import totals
from gradcam.job.beside import Beside, Comparison, tflite_kind
from gradcam.job.checks import EvidenceChecks
from gradcam.job.inputs import FrameMap, ImageInputs, Prepared, in_original
from gradcam.job.looks import SIDE, ClassLooks, View
from gradcam.job.pictures import PictureOptions, caption, draw, tflite_caption
from gradcam.job.records import MapFacts, Outcome, Pictures, Rendered, SampleRecord, TfliteMap
from gradcam.job.weights import WeightSums

ModelOutput = tuple[SampleMaps, Beside | None]  # a sample's maps, and the TFLite model's if it ran


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
        checks: EvidenceChecks | None = None,
    ):
        """target_class: the class every map explains (None: the prediction); threshold: the error up
        to which a regression answer counts as correct; tflite: the TFLite model to run beside;
        checks: which samples' maps are checked against the model's own evidence (None: none)."""
        self.explainer, self.inputs, self.pictures = explainer, inputs, pictures
        self.checks = checks or EvidenceChecks("off")
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
        """One batch through the CAM pass and, if there is one, the TFLite model; the maps of the
        samples the checks choose checked against the model's own evidence."""
        explainer = self.explainer
        started = time.monotonic()
        inputs = np.stack([p.inputs for p in batch])
        truths = np.array([explainer.task.truth(p.sample.label, explainer.classes) for p in batch], np.int32)
        targets = np.full(len(batch), self.target, np.int32)
        maps = explainer.maps(inputs, targets, truths)
        beside = self.tflite.run(inputs, targets, maps) if self.tflite else [None] * len(batch)
        checking = time.monotonic()
        free = explainer.known(inputs)
        chosen = np.flatnonzero(self.checks.choose(len(batch), free))
        for i, checked in zip(chosen, explainer.check(inputs[chosen], [maps[i] for i in chosen]), strict=True):
            maps[i] = checked
        paid = len(chosen) - int(free[chosen].sum())
        self.checks.spent(len(batch), paid, time.monotonic() - checking, checking - started, len(chosen) - paid)
        return list(zip(maps, beside, strict=True))

    def render(self, prepared: Prepared, output: ModelOutput) -> Rendered:
        """One sample's maps on its image: its record and its pictures (in blend layout, a mistake's
        contrast map gets a picture of its own; a panel shows both maps), and the TFLite model's
        own map's picture beside them. A map whose twin is not LiteRT is not shown."""
        maps, beside = output
        explanation = self._finish(self.explainer, prepared, maps)
        device = None
        if beside is not None and beside.maps is not None and not beside.withheld:
            device = self._finish(self.tflite.twin, prepared, beside.maps)
        record = self._record(prepared, explanation, beside, device)
        if self.tflite and self.tflite.twin_shown and record.withheld:
            return Rendered(record, Pictures(None))  # the twin's map is all there is, and it is not the device's
        view = self._view(prepared, explanation)
        if not self.pictures.wanted(record):
            return Rendered(record, Pictures(None), view)
        kind = tflite_kind(self.tflite)
        overlay = draw(explanation, self.pictures, caption(record, kind))
        tflite = device and draw(device, self.pictures, tflite_caption(record, kind))
        contrast = explanation.contrast
        if contrast is None or self.pictures.layout == "panel":
            return Rendered(record, Pictures(overlay, tflite=tflite), view)
        return Rendered(record, Pictures(overlay, draw(contrast, self.pictures), tflite), view)

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

    def _finish(self, explainer: Explainer, prepared: Prepared, maps: SampleMaps) -> Explanation:
        """A sample's maps on its image, as its pictures show them."""
        return explainer.finish(prepared.image, prepared.geometry, maps)

    def _record(
        self, prepared: Prepared, explanation: Explanation, beside: Beside | None, device: Explanation | None
    ) -> SampleRecord:
        """The sample's answers judged, its map's facts, and the TFLite model's (device: its twin's
        explanation, when drawn and not withheld)."""
        sample, answer = prepared.sample, explanation.answer
        contrast = explanation.contrast and explanation.contrast.faithfulness
        contrast_evidence = explanation.contrast and explanation.contrast.evidence
        facts = MapFacts(
            explanation.explained,
            self._peak(explanation, prepared),
            explanation.blank,
            explanation.faithfulness,
            contrast,
            explanation.evidence,
            contrast_evidence,
        )
        record = SampleRecord(sample.path, sample.category, sample.label, self._judged(answer, sample.label), facts)
        if beside is None:
            return record
        tflite_answer = self.explainer.answer(beside.outputs)
        agrees = self.explainer.task.agrees(answer, tflite_answer, self.threshold)
        tflite_map = device and TfliteMap(
            device.explained,
            self._peak(device, prepared),
            map_agreement(explanation.cam, device.cam),
            device.faithfulness,
        )
        if self.tflite.twin_shown and beside.withheld:
            facts = MapFacts(explanation.explained, None, explanation.blank)  # the map is not the device's
        judged = self._judged(tflite_answer, sample.label)
        return replace(record, map=facts, tflite=judged, agrees=agrees, tflite_map=tflite_map, withheld=beside.withheld)

    def _peak(self, explanation: Explanation, prepared: Prepared) -> tuple[int, int] | None:
        """The file's pixel under the map's peak."""
        return explanation.peak and in_original(explanation.peak, explanation.image.shape, prepared.original)

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
        trust = totals.ScoreSums(TRUST_THRESHOLD, per_class=self.explainer.task.classifies)
        looks = self._class_looks() if self.frame else None
        return totals.RunningTotals(totals.map_scores, trust, self.tflite, looks=looks, weights=self._weight_sums())

    def _weight_sums(self) -> WeightSums | None:
        """What each class weighs, summed: only for models explained at their input features."""
        return None

    def _class_looks(self) -> ClassLooks:
        """The class summaries' running sums, their frame scaling the model's input."""
        spec = self.explainer.spec
        return ClassLooks(self.frame, (spec.width, spec.height))
