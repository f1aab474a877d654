"""The job's steps for audio (and other DSP-feature) models: each window of features Edge Impulse
computed is the model's input as it is, and its picture is its spectrogram drawn from those features.

The model sees a window as (frames, columns, 1): frames down, filters (or cepstra, or FFT bins)
across. The maps are put back on the features in that orientation, each feature a block of
pixels; the pictures are then turned a quarter for people: time left to right, low frequencies
(or cepstrum 0) at the bottom. A 1-D model's map (frames x 1) becomes a band along time.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import cv2
import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.edge.features import FeatureSet
from gradcam.engine.preprocess import Geometry
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.explanation import Explanation
from gradcam.job.classify import ClassifyStages
from gradcam.job.inputs import Prepared
from gradcam.job.records import Rendered, SampleRecord, WindowFacts

log = logging.getLogger("gradcam")

FETCHERS = 4  # sounds downloaded at a time
# A window's picture is at least this many pixels along time and across frequency.
MIN_TIME_PX, MIN_BAND_PX = 384, 160


def spectrogram(features: np.ndarray, grey_range: tuple[float, float], scale: tuple[int, int]) -> np.ndarray:
    """(frames, columns) features -> an RGB grey picture in the model's orientation, each feature a
    block of scale = (rows, columns) pixels, loud white."""
    low, high = grey_range
    grey = np.clip((features - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    grey = cv2.resize(grey, None, fx=scale[1], fy=scale[0], interpolation=cv2.INTER_NEAREST)
    return np.repeat(grey[:, :, None], 3, axis=2)


def turned(explanation: Explanation) -> Explanation:
    """The explanation as people read a spectrogram: time left to right, low frequencies at the bottom
    (the model's frames run down, its columns across from low to high)."""
    image, heatmap = np.rot90(explanation.image), np.rot90(explanation.heatmap)
    contrast = explanation.contrast and turned(explanation.contrast)
    region = (0, 0, image.shape[1], image.shape[0])
    return replace(explanation, image=image, heatmap=heatmap, region=region, contrast=contrast)


class FeatureInputs:
    """Reads the windows of a feature set as model inputs and spectrogram pictures."""

    def __init__(self, features: FeatureSet, explainer: Explainer):
        """Checks that the model takes windows of this many values, reshaped to (frames, columns)."""
        self.features = features
        self.frames, self.columns = explainer.spec.height, explainer.spec.width
        adapter, values = explainer.adapter, features.features.shape[1]
        if not adapter.flat_input or explainer.spec.channels != 1:
            shape = "x".join(map(str, adapter.image_shape))
            raise GradcamError(f"the model takes images ({shape}), not windows of features as {features.source} holds")
        if values != self.frames * self.columns:
            raise GradcamError(
                f"{features.source}: windows of {values} values; the model takes {self.frames * self.columns} "
                f"({self.frames} frames x {self.columns}): the features of another DSP block?"
            )
        self.scale = (-(-MIN_TIME_PX // self.frames), -(-MIN_BAND_PX // self.columns))  # the ceilings

    def prepare(self, sample: Sample) -> Prepared:
        values = self.features.row(sample).reshape(self.frames, self.columns)  # frame-major rows
        picture = spectrogram(values, self.features.grey_range, self.scale)
        (height, width), (rows, columns) = picture.shape[:2], self.scale
        geometry = Geometry(columns, rows, 0.0, 0.0, (0, 0, width, height))
        return Prepared(sample, picture, values[:, :, None], geometry, (width, height))


class FeatureStages(ClassifyStages):
    """Classification, binary and regression models on windows of features."""

    windows = True  # deploy.zip's results have the windows' columns

    def __init__(self, explainer: Explainer, features: FeatureSet, *args, **kwargs):
        """As ClassifyStages, the inputs read from `features`."""
        self.features = features
        # Each sample's sound, fetched (FETCHERS at a time) from when its first window is prepared:
        # its download's future until a window takes the bytes, then whether it came.
        self._sounds: dict[int, Future | bool] = {}
        self._lock = threading.Lock()
        self._failed = False  # a sound did not come (said once)
        self._fetching = ThreadPoolExecutor(FETCHERS, thread_name_prefix="sound") if features.sound else None
        super().__init__(explainer, FeatureInputs(features, explainer), *args, **kwargs)

    def prepare(self, sample: Sample) -> Prepared:
        """As ClassifyStages; the sample's sound starts downloading (for the report's player)."""
        sample_id = self.features.windows[sample.path].sample_id
        if self._fetching is not None and sample_id is not None:
            with self._lock:
                if sample_id not in self._sounds:
                    self._sounds[sample_id] = self._fetching.submit(self.features.sound, sample_id)
        return super().prepare(sample)

    def render(self, prepared: Prepared, output: tuple) -> Rendered:
        """As ClassifyStages; a window with a picture also gets its sample's sound: the bytes for the
        first such window (stored once), the name for the others."""
        rendered = super().render(prepared, output)
        sample_id = self.features.windows[prepared.sample.path].sample_id
        if rendered.pictures.overlay is None or sample_id not in self._sounds:
            return rendered
        return replace(rendered, pictures=replace(rendered.pictures, sound=self._sound(sample_id)))

    def _sound(self, sample_id: int) -> tuple[str, bytes | None] | None:
        """(name, WAV) for the first window that takes it, (name, None) after; None: it did not come."""
        name = f"audio/sample-{sample_id}.wav"
        with self._lock:  # held while the download ends (it began when the window was prepared)
            fetched = self._sounds[sample_id]
            if isinstance(fetched, bool):
                return (name, None) if fetched else None
            try:
                sound = fetched.result()
            except GradcamError as exc:
                if not self._failed:
                    log.warning("warning: %s: its windows get no player (later failures are not logged)", exc)
                self._sounds[sample_id], self._failed = False, True
                return None
            self._sounds[sample_id] = True  # taken: its bytes are let go once written
            return name, sound

    def close(self) -> None:
        """Stop fetching sounds (the job ended, or was stopped)."""
        if self._fetching is not None:
            self._fetching.shutdown(wait=False, cancel_futures=True)

    def _shown(self, explanation: Explanation) -> Explanation:
        return turned(explanation)

    def _frame(self) -> None:
        """No class summaries for windows of features (yet)."""
        return None

    def _peak(self, explanation: Explanation, prepared: Prepared) -> None:
        """A window's map peaks at a time and band (its WindowFacts), not at a file's pixel."""
        return None

    def _record(self, prepared: Prepared, explanation: Explanation, *beside) -> SampleRecord:
        record = super()._record(prepared, explanation, *beside)
        return replace(record, window=self._window_facts(prepared, explanation))

    def _window_facts(self, prepared: Prepared, explanation: Explanation) -> WindowFacts:
        """The window's origin, and the frame (and, for a 2-D map, the column) under the map's peak."""
        window = self.features.windows[prepared.sample.path]
        facts = WindowFacts(window.sample_id, window.start_ms, window.end_ms, None, None)
        if explanation.peak is None:
            return facts
        (x, y), (rows, columns) = explanation.peak, self.inputs.scale
        frame = int(y // rows)
        if window.start_ms is not None:
            span = window.end_ms - window.start_ms
            facts = replace(facts, peak_ms=round(window.start_ms + (frame + 0.5) / self.inputs.frames * span))
        facts = replace(facts, peak_frame=frame)
        if explanation.cam.shape[1] == 1:  # a 1-D map: along time only
            return facts
        column, centres = int(x // columns), self.features.band_centres
        return replace(
            facts, peak_filter=column, peak_hz=centres[column] if centres and column < len(centres) else None
        )
