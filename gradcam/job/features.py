"""The job's steps for audio (and other DSP-feature) models: each window of features Edge Impulse
computed is the model's input as it is, and its picture is its spectrogram drawn from those features.

A window's features are one or more DSP blocks' outputs side by side, each frames x columns
(filters, cepstra or FFT bins; gradcam.edge.layout). A map lives on the model's input; the layout
carries it back to each block's features. The picture has one panel per block, stacked, each turned
for people: time left to right, low frequencies (or cepstrum 0) at the bottom, each feature a block
of pixels; each panel gets its block's heat.
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
from gradcam.edge.layout import FeatureLayout
from gradcam.engine.preprocess import Geometry
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.explanation import Explanation, SampleMaps
from gradcam.job.classify import ClassifyStages
from gradcam.job.inputs import Prepared
from gradcam.job.looks import SIDE, ClassLooks, View
from gradcam.job.records import Rendered, SampleRecord, WindowFacts

log = logging.getLogger("gradcam")

FETCHERS = 4  # sounds downloaded at a time
# A block's panel is at least this many pixels along time and across frequency.
MIN_TIME_PX, MIN_BAND_PX = 384, 160
GAP_PX = 4  # between two blocks' panels


def spectrogram(features: np.ndarray, grey_range: tuple[float, float]) -> np.ndarray:
    """(frames, columns) features -> grey levels turned for people (columns, frames): time left to right,
    column 0 at the bottom, loud white."""
    low, high = grey_range
    return np.rot90(np.clip((features - low) / (high - low) * 255, 0, 255).astype(np.uint8))


class FeatureInputs:
    """Reads the windows of a feature set as model inputs and pictures, one panel per DSP block."""

    def __init__(self, features: FeatureSet, explainer: Explainer):
        """Checks that the model takes windows of this many values, reshaped to (rows, columns), and
        lays the blocks out in them (a lone block of unknown shape: the model's rows are its frames)."""
        self.features = features
        rows, columns = explainer.spec.height, explainer.spec.width
        if not explainer.adapter.flat_input or explainer.spec.channels != 1:
            shape = "x".join(map(str, explainer.adapter.image_shape))
            raise GradcamError(f"the model takes images ({shape}), not windows of features as {features.source} holds")
        given = features.blocks
        if len(given) == 1 and given[0].shape is None and features.values != rows * columns:
            raise GradcamError(
                f"{features.source}: windows of {features.values} values; the model takes {rows * columns} "
                f"({rows} frames x {columns}): the features of another DSP block?"
            )
        shapes = [(b.name, b.shape or (rows, columns), b.band_centres) for b in given]
        self.layout = FeatureLayout.of(shapes, (rows, columns))
        # Each feature a block of whole pixels: the pictures' width (the widest panel's), each panel's
        # height and top row.
        blocks = self.layout.blocks
        self.width = max(b.frames * -(-MIN_TIME_PX // b.frames) for b in blocks)
        self.heights = [b.columns * -(-MIN_BAND_PX // b.columns) for b in blocks]
        self.tops = [sum(self.heights[:i]) + GAP_PX * i for i in range(len(blocks))]
        self.height = self.tops[-1] + self.heights[-1]

    def prepare(self, sample: Sample) -> Prepared:
        values = self.features.row(sample)
        parts = zip(self.layout.split(values), self.features.blocks, strict=True)
        grey = self._stacked([spectrogram(part, block.grey_range) for part, block in parts])
        picture = np.repeat(grey[:, :, None], 3, axis=2)
        rows, columns = self.layout.shape
        geometry = Geometry(self.width / columns, self.height / rows, 0.0, 0.0, (0, 0, self.width, self.height))
        return Prepared(sample, picture, values.reshape(rows, columns, 1), geometry, (self.width, self.height))

    def heatmap(self, cam: np.ndarray) -> np.ndarray:
        """A map at its layer's resolution -> its heat over the picture, each panel its block's."""
        turned = [np.rot90(heat) for heat in self.layout.heat(cam)]
        return self._stacked(turned, interpolation=cv2.INTER_LINEAR)

    def _stacked(self, panels: list[np.ndarray], interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
        """The blocks' panels (each turned), each stretched to its place, stacked with a gap."""
        out = np.zeros((self.height, self.width), panels[0].dtype)
        for panel, top, height in zip(panels, self.tops, self.heights, strict=True):
            out[top : top + height] = cv2.resize(
                np.ascontiguousarray(panel), (self.width, height), interpolation=interpolation
            )
        return out


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

    def _finish(self, explainer: Explainer, prepared: Prepared, maps: SampleMaps) -> Explanation:
        """The window's maps as heat on its blocks' panels (a mistake's contrast map too)."""
        return explainer.finish(prepared.image, prepared.geometry, maps, heatmap=self.inputs.heatmap)

    def _frame(self) -> tuple[int, int]:
        """The class summaries' frame: the window's picture, at most looks.SIDE pixels on its long side."""
        factor = SIDE / max(self.inputs.width, self.inputs.height)
        return max(1, round(self.inputs.height * factor)), max(1, round(self.inputs.width * factor))

    def _view(self, prepared: Prepared, explanation: Explanation) -> View:
        """The window's picture and heat (a mistake's true-class heat too) in the summaries' frame:
        their means are the class's spectrogram and map, and the shortcut check finds frames and bands
        that the maps keep landing on while the features there hardly change."""
        height, width = self.frame

        def framed(picture: np.ndarray) -> np.ndarray:
            return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)

        contrast = explanation.contrast
        return View(
            explanation.explained,
            framed(explanation.heatmap),
            framed(prepared.image),
            contrast and contrast.explained,
            contrast and framed(contrast.heatmap),
        )

    def _class_looks(self) -> ClassLooks:
        return ClassLooks(self.frame, (self.inputs.width, self.inputs.height), windows=True)

    def _peak(self, explanation: Explanation, prepared: Prepared) -> None:
        """A window's map peaks at a time and band (its WindowFacts), not at a file's pixel."""
        return None

    def _record(self, prepared: Prepared, explanation: Explanation, *beside) -> SampleRecord:
        record = super()._record(prepared, explanation, *beside)
        return replace(record, window=self._window_facts(prepared, explanation))

    def _window_facts(self, prepared: Prepared, explanation: Explanation) -> WindowFacts:
        """The window's origin, and the block, frame and (where the map tells columns apart) column
        under the map's peak."""
        window = self.features.windows[prepared.sample.path]
        facts = WindowFacts(window.sample_id, window.start_ms, window.end_ms, None, None)
        layout = self.inputs.layout
        peak = layout.peak(layout.heat(explanation.cam))
        if peak is None:
            return facts
        block = layout.blocks[peak.block]
        facts = replace(facts, peak_block=block.name, peak_frame=peak.frame)
        if window.start_ms is not None:
            span = window.end_ms - window.start_ms
            facts = replace(facts, peak_ms=round(window.start_ms + (peak.frame + 0.5) / block.frames * span))
        if peak.column is None:  # a map along time only
            return facts
        centres = block.band_centres
        return replace(facts, peak_filter=peak.column, peak_hz=centres[peak.column] if centres else None)
