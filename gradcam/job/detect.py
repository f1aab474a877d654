"""The job's steps for FOMO object detection models: every detection and every missed box of an
image explained in one CAM pass per batch, then each image's objects drawn and recorded."""

from __future__ import annotations

import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.engine import detection
from gradcam.engine.preprocess import display_image
from gradcam.explainer import Explainer
from gradcam.job import totals
from gradcam.job.inputs import ImageInputs, Prepared
from gradcam.job.pictures import PictureOptions, draw, object_caption
from gradcam.job.records import MapFacts, ObjectRecord, Objects, Outcome, Pictures, Rendered, SampleRecord, Totals

ModelOutput = tuple[detection.Frame, detection.Plan, list[np.ndarray]]  # a sample's frame, objects and maps


class DetectStages:
    """FOMO object detection models on images."""

    by_label = False  # an image holds several labels
    detection = True  # deploy.zip's results get the detection columns and objects.csv

    def __init__(self, explainer: Explainer, inputs: ImageInputs, pictures: PictureOptions, threshold: float):
        """threshold: a cell's minimum probability to count as an object."""
        self.explainer, self.inputs, self.pictures, self.threshold = explainer, inputs, pictures, threshold

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
        return [(frame, plan, cams) for frame, (plan, cams) in zip(frames, explained, strict=True)]

    def render(self, prepared: Prepared, output: ModelOutput) -> Rendered:
        frame, plan, cams = output
        explanation = detection.finish(display_image(prepared.image, self.explainer.spec), frame, plan, cams)
        record = _record(prepared.sample, explanation)
        return Rendered(record, Pictures(draw(explanation, self.pictures, object_caption(record))))

    def totals(self, records: list[SampleRecord]) -> Totals:
        return Totals(detection=totals.detection(records, self.threshold))


def _record(sample: Sample, explanation: detection.DetectionExplanation) -> SampleRecord:
    """An image's detections against its boxes, and every object with its map's peak."""
    objects = tuple(
        ObjectRecord(o.kind, o.label, o.confidence, o.centroid, o.box, o.peak, o.peak_in_box)
        for o in explanation.objects
    )
    found = [o for o in objects if o.kind == "detection"]
    answer = Outcome(
        ", ".join(o.label for o in found) or "nothing",
        max((o.confidence for o in found), default=None),
        explanation.correct,
    )
    blank = bool(objects) and all(o.peak is None for o in objects)
    truth = None if sample.boxes is None else ", ".join(sorted(b.label for b in sample.boxes))
    return SampleRecord(
        sample.path,
        sample.category,
        truth,
        answer,
        MapFacts("", None, blank),
        detection=Objects(explanation.counts, objects),
    )
