"""The job's steps for FOMO object detection models: every detection and every missed box of an
image explained in one CAM pass per batch, then each image's objects drawn and recorded. The TFLite
model beside it reads the same inputs; its detections agree with the Keras model's when each has
a twin of its class in the same cell."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.engine import detection, fomo
from gradcam.engine.agreement import map_agreement
from gradcam.engine.detection import ObjectMaps
from gradcam.engine.preprocess import display_image
from gradcam.engine.trust import TRUST_THRESHOLD
from gradcam.explainer import Explainer
from gradcam.job import totals
from gradcam.job.beside import Beside, Comparison, tflite_kind
from gradcam.job.inputs import ImageInputs, Prepared
from gradcam.job.pictures import PictureOptions, draw, object_caption, tflite_caption
from gradcam.job.records import (
    MapFacts,
    ObjectRecord,
    Objects,
    Outcome,
    Pictures,
    Rendered,
    SampleRecord,
    TfliteMap,
)

# A sample's frame, objects with their maps, and the TFLite model's if it ran.
ModelOutput = tuple[detection.Frame, ObjectMaps, Beside | None]


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
        beside = self.tflite.run_objects(inputs, frames, explained) if self.tflite else [None] * len(batch)
        return list(zip(frames, explained, beside, strict=True))

    def render(self, prepared: Prepared, output: ModelOutput) -> Rendered:
        frame, objects, beside = output
        image = display_image(prepared.image, self.explainer.spec)
        explanation = detection.finish(image, frame, objects)
        record, device = _record(prepared.sample, explanation), None
        if beside is not None:
            record = self._compared(record, objects.plan, beside.outputs.reshape(objects.grid.shape))
            record = replace(record, withheld=beside.withheld)
            if beside.maps is not None and not beside.withheld:
                device = detection.finish(image, frame, beside.maps)
                record = _with_tflite_maps(record, objects, beside.maps, device)
        if self.tflite and self.tflite.twin_shown and record.withheld:
            return Rendered(_without_maps(record), Pictures(None))  # the twin's maps are not the device's
        if not self.pictures.wanted(record):
            return Rendered(record, Pictures(None))
        kind = tflite_kind(self.tflite)
        overlay = draw(explanation, self.pictures, object_caption(record, kind))
        tflite = device and draw(device, self.pictures, tflite_caption(record, kind))
        return Rendered(record, Pictures(overlay, tflite=tflite))

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
        trust = totals.ScoreSums(TRUST_THRESHOLD, per_class=True)
        return totals.RunningTotals(totals.object_scores, trust, self.tflite, totals.DetectionSums(self.threshold))


def _with_tflite_maps(
    record: SampleRecord, keras: ObjectMaps, tflite: ObjectMaps, device: detection.DetectionExplanation
) -> SampleRecord:
    """The record with the TFLite model's map of each object and of the image (all its objects' maps
    at once, their maximum), each against the Keras model's."""
    objects = tuple(
        replace(o, tflite=TfliteMap(o.label, d.peak, map_agreement(k, d.cam), d.faithfulness, d.peak_in_box))
        for o, d, k in zip(record.detection.objects, device.objects, keras.cams, strict=True)
    )
    agreement = map_agreement(_combined(keras), _combined(tflite)) if keras.cams else None
    return replace(
        record, detection=replace(record.detection, objects=objects), tflite_map=TfliteMap("", None, agreement)
    )


def _combined(found: ObjectMaps) -> np.ndarray:
    return np.max(np.stack(found.cams), axis=0)


def _without_maps(record: SampleRecord) -> SampleRecord:
    """The record with no map facts: its maps were the twin's, whose outputs are not LiteRT's."""
    objects = tuple(replace(o, peak=None, peak_in_box=None, faithfulness=None) for o in record.detection.objects)
    return replace(
        record, map=replace(record.map, faithfulness=None), detection=replace(record.detection, objects=objects)
    )


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
