"""A time-series impulse's DSP blocks through the Studio API (official client): each block's output
shape, the features it computed (npy bodies), the windows' labels and origin, and a sample's audio
or raw signal."""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import edgeimpulse_api as ei
import numpy as np

from gradcam.edge.features import BlockFeatures, FeatureSet, Timing, feature_set, joined
from gradcam.edge.impulse import FeatureBlock, enum_value
from gradcam.edge.layout import band_centres
from gradcam.edge.sensors import Signal, sensor_layout
from gradcam.errors import GradcamError

log = logging.getLogger("gradcam")


class Caller(Protocol):
    """What DspData needs of a Studio client (gradcam.edge.studio.StudioClient, which makes it)."""

    api_client: ei.ApiClient

    def call(self, what: str, fn: Callable, *args, **kwargs): ...


class DspData:
    """The DSP blocks' side of one project's API, through a Studio client (its key, retries, errors)."""

    def __init__(self, studio: Caller):
        self.studio = studio
        self._dsp = ei.DSPApi(studio.api_client)

    def block(self, project_id: int, block: ei.ImpulseDspBlock) -> FeatureBlock:
        """A DSP block of the impulse, with its output's shape (frames, columns) from its metadata
        where that is a spectrogram; where it is flat, how its features were built from the axes."""
        meta = self.studio.call("reading the DSP metadata", self._dsp.get_dsp_metadata, project_id, block.id)
        output, kind = meta.output_config, enum_value(block.type)
        shape = sensor = None
        if output.type == "spectrogram" and output.shape.width and output.shape.height:
            shape = (int(output.shape.width), int(output.shape.height))
        elif output.type == "flat" and output.shape.width:
            window = meta.window_size_ms
            version = block.implementation_version
            count = int(output.shape.width)
            sensor = sensor_layout(kind, block.axes, count, meta.dsp_config, meta.frequency, window, version)
        return FeatureBlock(block.id, kind, block.name, shape, sensor)

    def feature_set(
        self, project_id: int, blocks: tuple[FeatureBlock, ...], category: str, classes: list[str]
    ) -> FeatureSet:
        """The windows of features the DSP blocks computed for a category (all: training, then
        testing), side by side in the impulse's order; the labels, and each row's sample and window,
        from the first block; each block's columns' frequencies from its metadata."""
        if category == "all":
            return joined([self.feature_set(project_id, blocks, part, classes) for part in ("training", "testing")])
        parts, timing = [], None
        for block in blocks:
            log.info("downloading the %s features of %s (%s)", category, block.name, block.type)
            x = self._npy("downloading the features", self._dsp.download_dsp_data, project_id, block.id, category)
            what = "reading the DSP metadata"
            meta = self.studio.call(what, self._dsp.get_dsp_metadata, project_id, block.id, category=category)
            centres = band_centres(block.type, meta.dsp_config, meta.frequency)
            parts.append(BlockFeatures(block.name, x, block.shape, centres, block.sensor))
            timing = timing or Timing(
                [(s.id, s.window_count) for s in meta.included_samples], meta.window_size_ms, meta.window_increase_ms
            )
        first = blocks[0]
        y = self._npy("downloading the labels", self._dsp.download_dsp_labels, project_id, first.id, category)
        names = (f"the {category} features of {first.name}", f"the {category} labels of {first.name}")
        source = Path(f"{'+'.join(block.name for block in blocks)}-{category}")
        found = feature_set(parts, y, classes, source=source, category=category, timing=timing, names=names)
        if first.sensor is not None:  # motion and sensors: each sample's raw signal, for the pictures
            return dataclasses.replace(found, signal=functools.partial(self.sample_signal, project_id))
        return dataclasses.replace(found, sound=functools.partial(self.sample_wav, project_id))

    def sample_wav(self, project_id: int, sample_id: int) -> bytes:
        """One sample's audio as WAV (the report's player)."""
        api = ei.RawDataApi(self.studio.api_client)
        what = f"downloading the audio of sample {sample_id}"
        return self.studio.call(what, api.get_sample_as_audio, project_id, sample_id, 0, _preload_content=False).data

    def sample_signal(self, project_id: int, sample_id: int) -> Signal:
        """One sample's raw data (a motion window's lanes)."""
        api = ei.RawDataApi(self.studio.api_client)
        what = f"downloading the raw data of sample {sample_id}"
        payload = self.studio.call(what, api.get_sample, project_id, sample_id).payload
        axes = tuple(sensor.name for sensor in payload.sensors)
        return Signal(np.asarray(payload.values, np.float32).reshape(-1, len(axes)), payload.interval_ms, axes)

    def _npy(self, what: str, fn: Callable, *args) -> np.ndarray:
        """An npy body, read as bytes (the client would decode it as text)."""
        raw = self.studio.call(what, fn, *args, _preload_content=False)
        try:
            return np.load(io.BytesIO(raw.data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise GradcamError(f"Studio API: {what} failed: the answer is not an npy file ({exc})") from None
