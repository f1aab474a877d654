"""The job's steps for FOMO object detection models: every detection and every missed box of an
image explained in one CAM pass per batch, then each image's objects drawn and recorded. The TFLite
model beside it reads the same inputs; its detections agree with the Keras model's when each has
a twin of its class in the same cell."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.engine import detection, fomo
from gradcam.engine.faithfulness import TRUST_THRESHOLD
from gradcam.engine.objects import ObjectMaps
from gradcam.engine.preprocess import display_image
from gradcam.engine.tflite import Comparison
from gradcam.explainer import Explainer
from gradcam.job import totals
from gradcam.job.inputs import ImageInputs, Prepared
from gradcam.job.pictures import PictureOptions, draw, object_caption, tflite_kind
from gradcam.job.records import MapFacts, ObjectRecord, Objects, Outcome, Pictures, Rendered, SampleRecord

# A sample's frame, objects with their maps, and the TFLite model's output grid if it ran.
ModelOutput = tuple[detection.Frame, ObjectMaps, np.ndarray | None]


class DetectStages:
    """FOMO object detection models on images."""

    by_label = False  # an image holds several labels
    detection = True  # deploy.zip's results get the detection columns and objects.csv
    windows = False

    def __init__(
        self,
        explainer: Explainer,
        inputs: ImageInputs,
        pictures: PictureOptions,
        threshold: float,
        tflite: Comparison | None = None,
    ):
        """threshold: a cell's minimum probability to count as an object; tflite: the TFLite model
        to run beside."""
        self.explainer, self.inputs, self.pictures, self.threshold = explainer, inputs, pictures, threshold
        self.tflite = tflite

    def problem(self, sample: Sample) -> str | None:
        return None

    def prepare(self, sample: Sample) -> Prepared:
        return self.inputs.prepare(sample)

    def run(self, batch: list[Prepared]) -> list[ModelOutput]:
        """One batch: a forward pass decodes every image, one CAM pass explains every object."""
        explainer = self.explainer
        frames = [explainer.frame((p.image.shape[1], p.image.shape[0]), p.geometry, p.original) for p in batch]
        inputs = np.stack([p.inputs for p in batch])
        explained = explainer.run_objects(inputs, frames, [p.sample.boxes for p in batch], self.threshold)
        model = self.tflite and self.tflite.model
        grids = model.predict(inputs).reshape(len(batch), *explainer.adapter.output_shape) if model else None
        return [
            (frame, objects, None if grids is None else grids[i])
            for i, (frame, objects) in enumerate(zip(frames, explained, strict=True))
        ]

    def render(self, prepared: Prepared, output: ModelOutput) -> Rendered:
        frame, objects, grid = output
        explanation = detection.finish(display_image(prepared.image, self.explainer.spec), frame, objects)
        record = _record(prepared.sample, explanation)
        if grid is not None:
            record = self._compared(record, objects.plan, grid)
        if not self.pictures.wanted(record):
            return Rendered(record, Pictures(None))
        kind = tflite_kind(self.tflite)
        return Rendered(record, Pictures(draw(explanation, self.pictures, object_caption(record, kind))))

    def _compared(self, record: SampleRecord, plan: detection.Plan, grid: np.ndarray) -> SampleRecord:
        """The record with the TFLite model's detections, and whether they are the Keras model's."""
        found = fomo.decode(grid, self.threshold)
        labels = [self.explainer.classes[d.class_index] for d in found]
        keras = [t.detection for t in plan.targets if t.detection is not None]
        tflite = Outcome(", ".join(labels) or "nothing", max((d.confidence for d in found), default=None))
        return replace(record, tflite=tflite, agrees=fomo.same_objects(keras, found))

    def close(self) -> None:
        """Nothing held."""

    def running_totals(self) -> totals.RunningTotals:
        trust = totals.TrustSums(TRUST_THRESHOLD, per_class=True)
        return totals.RunningTotals(totals.object_scores, trust, self.tflite, totals.DetectionSums(self.threshold))


def _record(sample: Sample, explanation: detection.DetectionExplanation) -> SampleRecord:
    """An image's detections against its boxes, and every object with its map's peak."""
    objects = tuple(
        ObjectRecord(o.kind, o.label, o.confidence, o.centroid, o.box, o.peak, o.peak_in_box, o.faithfulness)
        for o in explanation.objects
    )
    found = [o for o in objects if o.kind == "detection"]
    answer = Outcome(
        ", ".join(o.label for o in found) or "nothing",
        max((o.confidence for o in found), default=None),
        explanation.correct,
    )
    blank = bool(objects) and all(o.peak is None for o in objects)
    scores = [o.faithfulness for o in objects if o.faithfulness is not None]
    facts = MapFacts("", None, blank, min(scores, default=None))  # the image's least faithful object map
    truth = None if sample.boxes is None else ", ".join(sorted(b.label for b in sample.boxes))
    return SampleRecord(
        sample.path, sample.category, truth, answer, facts, detection=Objects(explanation.counts, objects)
    )
