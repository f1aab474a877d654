"""One kind of model's steps in the job, behind one protocol; the batch loop (gradcam.job.loop) asks
the stages it is given and knows nothing else of the model. `stages_for` picks them, once."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from gradcam.edge.dataset import Dataset, Sample
from gradcam.edge.features import FeatureSet
from gradcam.engine.attribution import REFERENCES
from gradcam.engine.layers import AUTO, LAST_CONV
from gradcam.engine.tasks import Detection
from gradcam.engine.tflite import TfliteModel
from gradcam.engine.tflite_graph import read
from gradcam.engine.twin_model import TwinAdapter
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.job.beside import Comparison
from gradcam.job.checks import EvidenceChecks
from gradcam.job.classify import ClassifyStages
from gradcam.job.detect import DetectStages
from gradcam.job.features import FeatureStages
from gradcam.job.inputs import ImageInputs, Prepared
from gradcam.job.pictures import PictureOptions
from gradcam.job.records import Rendered
from gradcam.job.sensors import SensorStages
from gradcam.job.totals import RunningTotals
from gradcam.settings import Settings

log = logging.getLogger("gradcam")

BASELINE_ROWS = 5000  # windows (evenly spread) whose median is an input attribution's baseline


class Stages(Protocol):
    """prepare (thread pool) -> run (the model, one batch at a time) -> render (thread pool); each
    record summed into the running totals."""

    by_label: bool  # deploy.zip has a folder per true label
    detection: bool  # deploy.zip's results have the detection columns and objects.csv
    windows: bool  # deploy.zip's results have the audio windows' columns

    def problem(self, sample: Sample) -> str | None:
        """Why a sample cannot be judged, before it is read; None: it can."""

    def prepare(self, sample: Sample) -> Prepared:
        """Read and preprocess one sample; a Prepared with a reason when it cannot be explained."""

    def run(self, batch: list[Prepared]) -> list[Any]:
        """One batch through the model: per sample, what render needs."""

    def render(self, prepared: Prepared, output: Any) -> Rendered:
        """One sample's record and pictures. Thread-safe."""

    def running_totals(self) -> RunningTotals:
        """The run's totals, to be fed every record: what this kind of model sums."""

    def close(self) -> None:
        """Let go of what the stages hold (threads, downloads) once the job ends, however it ends."""


def stages_for(
    explainer: Explainer,
    dataset: Dataset | FeatureSet,
    settings: Settings,
    tflite: Comparison | None = None,
    prepaid: int = 0,
) -> Stages:
    """The stages for the explainer's model on this dataset (settings: with their defaults; prepaid:
    the checks auto's calibration made, gradcam.job.checks)."""
    pictures = PictureOptions(settings.alpha, settings.layout, settings.max_overlay_size, settings.overlays)
    checks = EvidenceChecks(settings.evidence, prepaid)
    judging = (settings.target_class, settings.regression_threshold, tflite, checks)
    if isinstance(dataset, FeatureSet):
        if isinstance(explainer.task, Detection):
            raise GradcamError("an object detection model does not take windows of features")
        path = explainer.adapter.path
        if path is None:
            return FeatureStages(explainer, dataset, pictures, *judging)
        # No convolution: attributions over its input features, from their median; a flat block's
        # (motion, sensors) drawn per axis, a spectrogram's on its panels.
        flat = not any(block.shape for block in dataset.blocks)
        stages = (SensorStages if flat else FeatureStages)(explainer, dataset, pictures, *judging)
        if flat:  # the model's own evidence hides a flat block's feature groups
            explainer.use_groups(stages.inputs.layout.group_index)
        baseline, references = dataset.median(BASELINE_ROWS), dataset.spread(REFERENCES)
        beside = tflite and tflite.twin and tflite.twin.adapter.path  # the TFLite model's own attributions
        for each in (path, beside):
            if each is not None:
                each.set_baseline(baseline)
                each.set_references(references)
        count = min(len(dataset.blocks[0].values), BASELINE_ROWS)
        log.info(
            "attributions from %d windows of the data; deletions to each feature's median over %d",
            len(references),
            count,
        )
        return stages
    inputs = ImageInputs(dataset, explainer, settings.max_overlay_size)
    if isinstance(explainer.task, Detection):
        return DetectStages(explainer, inputs, pictures, settings.detection_threshold, tflite)
    return ClassifyStages(explainer, inputs, pictures, *judging)


def open_tflite(settings: Settings, explainer: Explainer) -> Comparison | None:
    """The TFLite model to run beside, checked against the Keras model: an error when --tflite
    named it, a warning with Studio's own trained.tflite (its columns then stay empty). With
    --explain both, its own maps are drawn beside the Keras model's, from its twin. A TFLite model
    explained alone is run on LiteRT beside its twin: the device's answers, on every sample,
    against the twin's, whose maps are shown only where the two match."""
    adapter = explainer.adapter
    if isinstance(adapter, TwinAdapter) and settings.tflite is None:
        log.info("checking the TFLite twin (%s) against LiteRT on every sample", adapter.kind)
        model = TfliteModel.of(adapter.graph)
        return Comparison("LiteRT", model, twin_shown=True)
    if settings.tflite is None or settings.no_tflite:
        return None
    name = settings.tflite.name
    try:
        model = TfliteModel.beside(settings.tflite, explainer.adapter)
    except GradcamError as exc:
        if settings.tflite_required:
            raise
        log.warning("warning: %s: the TFLite columns stay empty", exc)
        return Comparison(name, problem=str(exc))
    twin = _twin(settings, explainer) if settings.explain == "both" else None
    log.info("comparing with %s (%s) on every sample%s", name, model.kind, "; its own maps beside" if twin else "")
    return Comparison(name, model, twin=twin)


def _twin(settings: Settings, explainer: Explainer) -> Explainer | None:
    """The TFLite model's own explainer, with the Keras explainer's options and classes; None, with a
    warning, where it cannot be explained (its answers are still compared)."""
    log.info("building the TFLite twin of %s", settings.tflite.name)
    options = settings.explainer_options()
    if settings.layer not in (AUTO, LAST_CONV):  # the Keras layers, named as in the file (model_1/...)
        options["layer"] = ",".join(layer["name"].rsplit("/", 1)[-1] for layer in explainer.layers())
    try:
        return Explainer(read(settings.tflite), explainer.classes, **options)
    except GradcamError as exc:
        log.warning("warning: %s: only its answers are compared, its maps are not drawn", exc)
        return None
