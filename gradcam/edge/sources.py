"""Where the model and the dataset come from: Studio's block contract or an API key.

Each source completes the settings (model path, classes, preprocessing from the impulse) and
gives the step that exports the dataset, which the job takes once it has checked the model: the
job only ever sees a local model and dataset.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gradcam.choices import DEFAULT_HOST
from gradcam.edge.block import read_metadata
from gradcam.edge.dataset import Dataset, open_dataset
from gradcam.edge.features import FeatureSet
from gradcam.edge.impulse import FeatureBlock, ImageResize, choose_learn_block
from gradcam.errors import GradcamError
from gradcam.settings import Settings

if TYPE_CHECKING:
    from gradcam.edge.dsp import DspData
    from gradcam.edge.studio import StudioClient

log = logging.getLogger("gradcam")


@dataclass(frozen=True)
class Source:
    """Where a run's model and dataset come from: the settings, completed by the source, and for a
    remote source (Studio, an API key) the step that exports the dataset, taken by the job once it
    has checked the model."""

    settings: Settings
    # Fetches and opens the dataset for the model's classes; None: settings.dataset (or features) is local.
    fetch: Callable[[list[str]], Dataset | FeatureSet] | None = None


def _client(api_key: str, host: str) -> StudioClient:
    """Studio's client, imported here: edgeimpulse_api builds its pydantic models on import (about 2 s),
    which a local run does not need."""
    from gradcam.edge.studio import StudioClient

    return StudioClient(api_key, host)


def _dsp(client: StudioClient) -> DspData:
    from gradcam.edge.dsp import DspData

    return DspData(client)


def _complete(
    settings: Settings,
    impulse_classes: list[str],
    image_shape: tuple[int, int, int] | None,
    resize: ImageResize,
    input_scaling: str | None,
    detection_threshold: float | None,
    **fetched,
) -> Settings:
    """The settings with the fetched files and the impulse's values; an option given on the
    command line wins over the impulse's."""

    def prefer(flag, impulse):
        return flag if flag is not None else impulse

    color = None if image_shape is None else ("Grayscale" if image_shape[2] == 1 else "RGB")
    return dataclasses.replace(
        settings,
        classes=settings.classes or impulse_classes or None,
        image_shape=image_shape,
        resize_mode=prefer(settings.resize_mode, resize.mode),
        resize_method=prefer(settings.resize_method, resize.method),
        crop_anchor=prefer(settings.crop_anchor, resize.anchor),
        color=prefer(settings.color, color),
        input_scaling=prefer(settings.input_scaling, input_scaling),
        detection_threshold=prefer(settings.detection_threshold, detection_threshold),
        **fetched,
    )


def _feature_settings(blocks: tuple[FeatureBlock, ...]) -> dict:
    """The settings a time-series impulse's DSP blocks give: their types, and each one's shape."""
    if not blocks:
        return {}
    shapes = [block.shape for block in blocks]
    return {
        "dsp_block": "+".join(block.type for block in blocks),
        "feature_shapes": shapes if all(shapes) else None,
    }


def from_block(settings: Settings, work: Path) -> Source:
    """Studio's deployment: deployment-metadata.json, trained.h5.zip in the input folder."""
    meta = read_metadata(settings.metadata)
    meta.check_output()
    client = _client(meta.require_key(), settings.host or meta.studio_host or DEFAULT_HOST)
    log.info("project %s (%s)", meta.project_id, meta.project_name)
    model = meta.model_zip
    features = ()
    if meta.learn_blocks and meta.image_shape:
        learn_id, learn_type, _ = choose_learn_block(meta.learn_blocks)
        keras = client.keras_metadata(meta.project_id, learn_id, learn_type)
        scaling, threshold = keras.input_scaling, keras.detection_threshold
    else:  # the impulse says which DSP block a time-series model reads (and has read the Keras metadata)
        info = client.impulse(meta.project_id)
        learn_id, features = info.learn_id, info.features
        scaling, threshold = info.input_scaling, info.detection_threshold
    tflite = settings.tflite or meta.tflite
    if not model.is_file() and tflite is not None and tflite.is_file():
        log.info("%s is missing (a project without a Keras model): explaining %s", model.name, tflite)
        model, tflite = tflite, None
    elif not model.is_file():
        log.info("%s is missing: downloading the model", model)
        model = client.download_model(meta.project_id, learn_id, work / "trained.h5.zip")
    settings = _complete(
        settings,
        meta.classes,
        meta.image_shape,
        meta.resize,
        scaling,
        threshold,
        model=model,
        tflite=tflite,
        tflite_required=settings.tflite is not None,
        out=meta.output_dir,
        **_feature_settings(features),
    )
    if features:
        return Source(
            settings, lambda classes: _dsp(client).feature_set(meta.project_id, features, settings.category, classes)
        )
    return Source(
        settings,
        lambda _: open_dataset(
            client.export_dataset(meta.project_id, work / "export.zip", settings.export_timeout), settings.category
        ),
    )


def _download_models(
    client: StudioClient, project_id: int, learn_id: int, settings: Settings
) -> tuple[Path, Path | None]:
    """What the project has: its Keras model and its TFLite model (int8 where offered). A project
    without a Keras model (bring your own model, custom learn blocks) gets its TFLite model explained."""
    folder = settings.work_dir
    found = None if settings.no_tflite else client.tflite_download(project_id)
    tflite = found and client.download_model(project_id, learn_id, folder / f"model-{project_id}-{found}.tflite", found)
    try:
        return client.download_model(project_id, learn_id, folder / f"model-{project_id}-{learn_id}.zip"), tflite
    except GradcamError as exc:
        if tflite is None or "HTTP 404" not in str(exc):
            raise
        log.info("the project has no Keras model (%s): explaining its TFLite model %s", exc, tflite.name)
        return tflite, None


def from_api_key(settings: Settings) -> Source:
    """A local run with an API key: the key's project, its Keras learn block, a fresh export."""
    client = _client(settings.api_key or "", settings.host or DEFAULT_HOST)
    project_id = settings.project_id or client.project_id()
    info = client.impulse(project_id, settings.impulse_id)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    export = settings.work_dir / f"export-{project_id}.zip"
    if settings.skip_dataset_download and not export.is_file():
        raise GradcamError(f"--skip-dataset-download: no earlier export at {export}; run once without it")
    model, tflite = _download_models(client, project_id, info.learn_id, settings)
    settings = _complete(
        settings,
        info.classes,
        info.image_shape,
        info.resize,
        info.input_scaling,
        info.detection_threshold,
        model=model,
        tflite=settings.tflite or tflite,
        tflite_required=settings.tflite is not None,
        **_feature_settings(info.features),
    )
    if info.features:
        return Source(
            settings, lambda classes: _dsp(client).feature_set(project_id, info.features, settings.category, classes)
        )

    def fetch(_classes: list[str]) -> Dataset:
        if settings.skip_dataset_download:
            log.info("reusing the export at %s", export)
            return open_dataset(export, settings.category)
        return open_dataset(client.export_dataset(project_id, export, settings.export_timeout), settings.category)

    return Source(settings, fetch)
