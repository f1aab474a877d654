"""The job, wired: a source's settings -> the model loaded once -> explainer and TFLite model built
and checked (before a Studio export's long wait) -> the dataset -> stages -> the batch loop ->
totals and warnings -> deploy.zip."""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam import stopping
from gradcam.edge.block import read_metadata
from gradcam.edge.dataset import Dataset, Sample, open_dataset
from gradcam.edge.features import FeatureSet, open_features
from gradcam.edge.sensors import read_config
from gradcam.engine import layers
from gradcam.engine.calibration import Choice
from gradcam.engine.formats import adapter_for, load_model
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.job import warnings as warned
from gradcam.job.beside import Comparison
from gradcam.job.calibrate import calibrates, choose, enough
from gradcam.job.loop import StageTimes, run_batches
from gradcam.job.pictures import class_tile
from gradcam.job.progress import IMAGES, WINDOWS, Progress
from gradcam.job.records import RunInfo, Skipped
from gradcam.job.stages import Stages, open_tflite, stages_for
from gradcam.job.totals import RunningTotals
from gradcam.report.writer import DeployZip
from gradcam.settings import Settings

if TYPE_CHECKING:
    from gradcam.edge.sources import Source

log = logging.getLogger("gradcam")


# Export file names carry no sample ids (contract, section 4), and the features' labels know samples only
# by id: matching the two would be a guess.
NO_PLAYER_OFFLINE = (
    "{dataset}: its audio cannot be matched to the windows without guessing (the export's file names carry no "
    "sample ids): the report shows spectrograms without players; Studio and --api-key runs fetch each sample's "
    "audio by id"
)


@dataclass
class Summary:
    """What a run produced."""

    zip_path: Path
    info: RunInfo  # the run's tally, skipped samples, totals and warnings
    stage_times: dict[str, float] = field(default_factory=dict)


class Job:
    """An explainer and the TFLite model beside it, run on a dataset."""

    def __init__(self, explainer: Explainer, settings: Settings, tflite: Comparison | None = None, model=None):
        """settings: with their defaults (Settings.with_defaults); model: the loaded model (for `auto`'s
        choice, which may build the explainer again)."""
        self.explainer, self.settings, self.tflite, self.model = explainer, settings, tflite, model
        self.choice: Choice | None = None  # what `auto` chose, once settled
        self.given = settings  # the settings as given, before `auto` was settled

    @classmethod
    def build(cls, model, settings: Settings, classes: list[str] | None) -> Job:
        """The explainer and the TFLite model for a loaded model, each checked against it now: a
        bad layer, target class or TFLite model is an error before any long work."""
        explainer = Explainer(model, classes, **settings.explainer_options())
        explainer.target_index(settings.target_class)
        if explainer.adapter.path is not None and not settings.reads_features:
            raise GradcamError(
                f"the model has no convolution layer and takes a flat vector of {explainer.spec.height} values: "
                "it is explained over windows of DSP features (--features; Studio: a time-series impulse), not images"
            )
        return cls(explainer, settings, open_tflite(settings, explainer), model)

    def settled(self, choice: Choice) -> Job:
        """This job with `auto`'s choice: its explainer and TFLite model built again where it differs."""
        explainer = self.explainer
        if (choice.method, choice.chosen.layer) == (explainer.method, explainer.layer_name):
            job = self
        else:
            chosen = replace(self.settings, method=choice.method, layer=choice.layer)
            job = Job.build(self.model, chosen, explainer.classes)
            job.explainer.evidence.memo = explainer.evidence.memo  # the sample's evidence is not taken twice
        job.choice, job.given = choice, self.given
        return job

    def run(self, dataset: Dataset | FeatureSet) -> Summary:
        """Explain every sample of the dataset and write deploy.zip (nothing is left of it on failure);
        `auto` settled first, on a sample of them."""
        prepaid = self.choice.samples if self.choice else 0  # the calibration's references: the first checks
        stages = stages_for(self.explainer, dataset, self.settings, self.tflite, prepaid)
        samples, skipped = _usable(dataset, stages)
        if self.choice is None and calibrates(self.settings, self.explainer) and enough(samples):
            choice = choose(self.explainer, self.model, self.settings, stages, samples)
            if choice is not None:
                stages.close()
                return self.settled(choice).run(dataset)
        return self._run(dataset, stages, samples, skipped)

    def _run(self, dataset, stages: Stages, samples: list[Sample], skipped: list[Skipped]) -> Summary:
        settings = self.settings
        self._announce(dataset, stages)
        output = DeployZip(settings.zip_path, stages.by_label, stages.detection, stages.windows)
        unit = WINDOWS if stages.windows else IMAGES
        progress, times, running = (
            Progress(len(samples), "explaining", unit=unit),
            StageTimes(),
            stages.running_totals(),
        )
        try:
            failed = run_batches(samples, stages, output, running, settings.batch_size, progress, times)
            info = self._info(stages, samples, running, skipped + failed)
            summary = Summary(settings.zip_path, info, dict(times.seconds, total=progress.close()))
            stopping.check()
            output.close(info, output.add_tiles(_tiles(info, settings.alpha)))
            return summary
        except BaseException:
            output.abort()
            raise
        finally:
            stages.close()

    def _announce(self, dataset: Dataset, stages: Stages) -> None:
        """The log's first lines: what is explained, and what the dataset holds that should be known."""
        explainer = self.explainer
        log.info("%s; task %s", _describe_layers(explainer), explainer.task.name)
        labels = self._label_warning(dataset.samples, stages.detection)
        named = warned.named_warning(sum(s.named for s in dataset.samples), len(dataset.samples))
        for warning in (named, labels, warned.coarse_warning(explainer.resolution, explainer.layer_name)):
            if warning:
                log.warning("warning: %s", warning)

    def _label_warning(self, samples: list[Sample], objects: bool) -> str | None:
        """The samples' labels that are not model classes (object boxes' labels when `objects`)."""
        task, classes = self.explainer.task, self.explainer.classes
        labels = [label for sample in samples for label in task.labels_of(sample)]
        return warned.label_warning(Counter(task.unknown_labels(labels, classes)), classes, objects)

    def _info(self, stages: Stages, samples: list[Sample], running: RunningTotals, skipped: list[Skipped]) -> RunInfo:
        explainer, settings = self.explainer, self.settings
        tally, kind_totals = running.tally(len(skipped)), running.totals()
        unread = {s.source for s in skipped}
        used = [s for s in samples if s.path not in unread]
        warnings = warned.warnings(
            warned.named_warning(sum(s.named for s in used), len(used)),
            self._label_warning(used, stages.detection),
            warned.tflite_warning(kind_totals.tflite),
            warned.withheld_warning(kind_totals.tflite),
            warned.elsewhere_warning(kind_totals.tflite),
            warned.coarse_warning(explainer.resolution, explainer.layer_name),
            warned.blank_warning(tally, running.explained, settings.target_class),
            warned.trust_warning(kind_totals.trust),
            warned.evidence_warning(kind_totals.evidence),
            warned.silent_warning(self.choice),
            *warned.shortcut_warnings(kind_totals.looks),
        )
        return RunInfo(
            model=settings.model.name if settings.model else "",
            layer=explainer.layer_name,
            task=explainer.task.name,
            method=explainer.method,
            classes=explainer.classes,
            parameters=self.given.parameters(),
            layers=explainer.layers(),
            last_conv=explainer.last_conv(),
            resolution="x".join(map(str, explainer.resolution)),
            tally=tally,
            skipped=skipped,
            warnings=warnings,
            totals=kind_totals,
            choice=self.choice,
        )


def _tiles(info: RunInfo, alpha: float) -> dict[tuple[str, str], bytes]:
    """The class summaries' tiles, keyed by (group, class)."""
    looks = info.totals.looks
    if looks is None:
        return {}
    groups = (("explained", looks.classes), ("mistakes", looks.mistakes))
    return {(group, look.name): class_tile(look, alpha) for group, items in groups for look in items}


def _usable(dataset: Dataset, stages: Stages) -> tuple[list[Sample], list[Skipped]]:
    """The samples to explain, and the skipped ones with reasons (the dataset's, then the stages')."""
    samples, skipped = [], [Skipped(path, reason) for path, reason in dataset.skipped]
    for sample in dataset.samples:
        problem = stages.problem(sample)
        if problem:
            skipped.append(Skipped(sample.path, problem))
        else:
            samples.append(sample)
    return samples, skipped


def _describe_layers(explainer: Explainer) -> str:
    explained = " x ".join(f"{layer['name']} ({layer['size']}, {layer['method']})" for layer in explainer.layers())
    last = explainer.last_conv()
    if not last:
        return f"explaining {explained}: the model has no convolution, its input features are explained"
    return f"explaining {explained}; the last conv is {last['name']} ({last['size']})"


def list_layers(settings: Settings) -> str:
    """The table that --list-layers prints: for --model, or the model mounted beside --metadata."""
    path, impulse_shape = settings.model, settings.image_shape
    if path is None and settings.metadata:
        meta = read_metadata(settings.metadata)
        path, impulse_shape = meta.model_zip, meta.image_shape
    if path is None:
        raise GradcamError("--list-layers needs --model (or --metadata with the model in its input folder)")
    adapter = adapter_for(load_model(path), "auto", impulse_shape)
    if adapter.path is not None:
        return f"{path}: no layer with a 1-D or 2-D output: its {adapter.image_shape[0]} input features are explained"
    return f"{path}: layers with a 1-D or 2-D output (* = explained by --layer auto)\n" + layers.describe(
        adapter.candidates, adapter.image_shape[0], dense=len(adapter.output_shape) == 3
    )


def run(source: Source) -> Summary:
    """The job on a source's model and dataset; the model is loaded once."""
    settings = _explained(source.settings.with_defaults())
    if settings.model is None or (settings.dataset is None and settings.features is None and source.fetch is None):
        raise GradcamError("nothing to explain: give --model and --dataset (or --features), --api-key, or --metadata")
    log.info("loading the model %s", settings.model.name)
    started = time.monotonic()
    model = load_model(settings.model)
    if source.fetch is None and settings.features is None:
        with open_dataset(settings.dataset, settings.category) as dataset:
            job = Job.build(model, settings, settings.classes or dataset.labels or None)
            log.info("model ready after %.1fs", time.monotonic() - started)
            return job.run(dataset)
    job = Job.build(model, settings, settings.classes)  # checked before a remote dataset's long wait
    log.info("model ready after %.1fs", time.monotonic() - started)
    with _opened(source, settings, job.explainer.classes) as dataset:
        return job.run(dataset)


def _explained(settings: Settings) -> Settings:
    """The settings with the model to explain: with --explain tflite, the TFLite model in place of
    the Keras one (checked on LiteRT as any TFLite model explained alone)."""
    if settings.explain != "tflite" or settings.tflite is None or settings.no_tflite:
        return settings
    log.info("--explain tflite: explaining %s in place of %s", settings.tflite.name, settings.model.name)
    return replace(settings, model=settings.tflite, tflite=None)


def _opened(source: Source, settings: Settings, classes: list[str]) -> Dataset | FeatureSet:
    """The remote dataset, fetched, or the local features (their labels are the model's class indices)."""
    if source.fetch is not None:
        return source.fetch(classes)
    if settings.dataset is not None:
        log.warning("warning: %s", NO_PLAYER_OFFLINE.format(dataset=settings.dataset))
    sensor = functools.partial(read_config, settings.dsp_config, settings.dsp_block, settings.axes)
    shapes = settings.feature_shapes
    return open_features(settings.features, settings.labels, classes, settings.category, shapes, sensor)


def explain_dataset(
    model: str | Path, dataset: str | Path | None = None, out: str | Path = "output", **options
) -> Summary:
    """The whole offline job from Python, as `main.py --model M --dataset D --out O`: deploy.zip in
    `out`. options: the settings by their field names (gradcam.settings.Settings), e.g.
    `overlays="mistakes"`, `layout="panel"`, `resize_mode="fit-short"`; an audio model's windows
    instead of a dataset: `features="X_testing.npy", labels="y_testing.npy", classes=[...]` (several DSP
    blocks: `features=[...]`, `feature_shapes=[(49, 13), (99, 40)]`)."""
    from gradcam.edge.sources import Source

    known = {f.name for f in fields(Settings)} - {"model", "dataset", "out"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise GradcamError(f"unknown option {', '.join(unknown)}: expected some of {', '.join(sorted(known))}")
    paths = {"labels": Path(options.pop("labels"))} if options.get("labels") is not None else {}
    features = options.pop("features", None)
    if features is not None:
        paths["features"] = [Path(f) for f in ([features] if isinstance(features, str | Path) else features)]
    dataset = None if dataset is None else Path(dataset)
    return run(Source(Settings(model=Path(model), dataset=dataset, out=Path(out), **paths, **options)))
