"""The job's steps for models without convolutions (motion and sensors): each window of features a flat
DSP block computed is the model's input as it is, and each feature gets an attribution
(gradcam.engine.attribution), read through the block's layout (gradcam.edge.sensors).

A window's picture has one lane per axis: where the features are the window's samples (raw,
Syntiant IMU), the signal itself, its attribution as heat along it; otherwise a row of cells, one per
feature of the axis (a spectral block's statistics, then its bands from low to high), grey from
that feature's lowest to highest value over the windows, its attribution as heat on it. Under the
lanes, a bar chart of the features that weigh most: for the class, to the right; against it, to the
left. A mistake gets its true class's picture too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import cv2
import numpy as np

from gradcam.edge.features import RANGE_ROWS, FeatureSet, spread_rows
from gradcam.edge.sensors import SensorLayout, sensor_layout
from gradcam.engine.overlay import caption_strip, write
from gradcam.engine.preprocess import Geometry
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from gradcam.explanation import Explanation, SampleMaps
from gradcam.job.classify import ClassifyStages
from gradcam.job.fetching import PerSample
from gradcam.job.inputs import Prepared
from gradcam.job.records import SampleRecord, WindowFacts
from gradcam.job.weights import GroupWeights, WeightSums, group_shares

log = logging.getLogger("gradcam")

LABEL_PX, LANE_PX, GAP_PX = 64, 56, 4  # the axes' names; one lane's height; between lanes
TRACE_PX = 40  # a window's raw signal above its axis's cells (features that are not samples)
MIN_PLOT_PX, MAX_PLOT_PX = 576, 1600  # a lane's width: each position whole pixels, up to the most
BARS, BAR_PX = 8, 18  # features in the chart; one row's height
FOR, AGAINST, TRACE = (215, 48, 39), (69, 117, 180), (40, 40, 40)  # RGB


def _ranges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's 1st and 99th percentile over at most RANGE_ROWS evenly spread windows."""
    low, high = np.percentile(spread_rows(values, RANGE_ROWS), (1, 99), axis=0)
    return low, np.where(high > low, high, low + 1.0)


class SensorInputs:
    """Reads the windows of a flat DSP block's features as model inputs and pictures."""

    def __init__(self, features: FeatureSet, explainer: Explainer):
        """Checks that the model is explained at its input, of this many features, and lays them out
        (a block read without its layout: one lane of features)."""
        values = features.values
        if explainer.adapter.path is None or len(features.blocks) != 1:
            raise GradcamError(
                f"{features.source}: flat features for a model that takes {explainer.spec.height} values"
            )
        if explainer.spec.height != values:
            raise GradcamError(
                f"{features.source}: windows of {values} values; the model takes {explainer.spec.height}: "
                "the features of another DSP block?"
            )
        block = features.blocks[0]
        self.features = features
        self.layout: SensorLayout = block.sensor or sensor_layout(block.name, None, values)
        self.low, self.high = _ranges(block.values)
        layout = self.layout
        axis, self.position = np.array(layout.axis), np.array(layout.position)
        lanes = axis >= 0
        self.per_lane = [axis == a for a in range(len(layout.axes))]
        if layout.timed:  # one range per axis: the signal's
            for mask in self.per_lane:
                self.low[mask], self.high[mask] = self.low[mask].min(), self.high[mask].max()
        self.step = -(-MIN_PLOT_PX // layout.positions)  # pixels per position
        if self.step * layout.positions > MAX_PLOT_PX:  # more features than pixels: shrunk
            self.step = MAX_PLOT_PX / layout.positions
        self.plot = round(self.step * layout.positions)
        self.width = LABEL_PX + self.plot
        # Features that are not samples get the window's raw signal above their cells, where it comes.
        self.traces = features.signal is not None and not layout.timed
        self.above = TRACE_PX if self.traces else 0
        self.height = len(layout.axes) * (self.above + LANE_PX + GAP_PX) - GAP_PX
        self.lanes = lanes

    def prepare(self, sample) -> Prepared:
        values = self.features.row(sample)
        geometry = Geometry(1.0, 1.0, 0.0, 0.0, (LABEL_PX, 0, self.width, self.height))
        return Prepared(sample, self._picture(values), values.reshape(-1, 1, 1), geometry, (self.width, self.height))

    def _picture(self, values: np.ndarray) -> np.ndarray:
        """The lanes: each axis's name, and its signal or its features' cells."""
        layout, picture = self.layout, np.full((self.height, self.width, 3), 255, np.uint8)
        level = np.clip((values - self.low) / (self.high - self.low), 0, 1)
        for a, (name, mask) in enumerate(zip(layout.axes, self.per_lane, strict=True)):
            top = self._top(a)
            write(picture, name, 4, top + LANE_PX // 2 + 4, LABEL_PX - 8)
            if layout.timed:
                _trace(picture, top, LABEL_PX + (self.position[mask] + 0.5) * self.step, level[mask])
            else:
                cells = self._stretched(np.round(level * 255).astype(np.uint8), mask)
                picture[top : top + LANE_PX, LABEL_PX:] = cells[None, :, None]
        return picture

    def _top(self, axis: int) -> int:
        """The top row of an axis's cells (or its signal, where the features are samples)."""
        return axis * (self.above + LANE_PX + GAP_PX) + self.above

    def with_signal(self, picture: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The picture with the window's raw signal (steps, axes) above each axis's cells, each axis
        scaled to its own range in the window."""
        picture = picture.copy()
        low, high = values.min(axis=0), values.max(axis=0)
        level = (values - low) / np.where(high > low, high - low, 1.0)
        x = LABEL_PX + (np.arange(len(values)) + 0.5) * self.plot / len(values)
        for a in range(values.shape[1]):
            _trace(picture, self._top(a) - self.above, x, level[:, a], TRACE_PX - 4)
        return picture

    def _stretched(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One lane's values, by position (the largest where several share one), across the plot."""
        row = np.zeros(self.layout.positions, values.dtype)
        np.maximum.at(row, self.position[mask], values[mask])
        shrunk = self.plot < self.layout.positions
        interpolation = cv2.INTER_AREA if shrunk else cv2.INTER_NEAREST
        return cv2.resize(row[None], (self.plot, 1), interpolation=interpolation)[0]

    def heatmap(self, cam: np.ndarray) -> np.ndarray:
        """Attributions (values, 1), signed -> the heat of those for the class, along each lane."""
        heat = np.zeros((self.height, self.width), np.float32)
        weights = np.clip(cam.reshape(-1), 0, 1).astype(np.float32)
        for a, mask in enumerate(self.per_lane):
            top = self._top(a)
            heat[top : top + LANE_PX, LABEL_PX:] = self._stretched(weights, mask)[None]
        return heat

    def chart(self, cam: np.ndarray, explained: str) -> np.ndarray:
        """The features that weigh most (by magnitude), one bar each: for `explained` to the right,
        against it to the left."""
        weights = cam.reshape(-1)
        order = [i for i in np.argsort(-np.abs(weights), kind="stable") if self.lanes[i] and weights[i] != 0][:BARS]
        chart = np.full(((len(order) + 1) * BAR_PX + 6, self.width, 3), 255, np.uint8)
        write(chart, f"features that weigh most for {explained}", 4, BAR_PX - 4, self.width - 8)
        names = self.width // 2
        centre, reach = names + (self.width - names) // 2, (self.width - names) // 2 - 4
        for row, i in enumerate(order, start=1):
            y = row * BAR_PX
            write(chart, self.layout.name(i), 4, y + BAR_PX - 5, names - 8)
            end = centre + round(weights[i] * reach)
            cv2.rectangle(
                chart,
                (min(centre, end), y + 3),
                (max(centre, end), y + BAR_PX - 3),
                FOR if weights[i] > 0 else AGAINST,
                -1,
            )
        cv2.line(chart, (centre, BAR_PX), (centre, chart.shape[0] - 4), TRACE, 1)
        return chart


def _trace(picture: np.ndarray, top: int, x: np.ndarray, level: np.ndarray, height: int = LANE_PX) -> None:
    """A signal's levels (0..1) drawn as a line at x, in `height` rows from `top`, high values up."""
    y = top + (1 - level) * (height - 1)
    points = np.round(np.stack([x, y], axis=1) * 16).astype(np.int32)[None]
    cv2.polylines(picture, points, False, TRACE, 1, cv2.LINE_AA, shift=4)


@dataclasses.dataclass
class SensorExplanation(Explanation):
    """A window's explanation: its lanes with the heat, over its bar chart (`chart`: attributions,
    explained class -> the chart)."""

    chart: Callable[[np.ndarray, str], np.ndarray] | None = None

    def overlay(self, alpha: float = 0.4) -> np.ndarray:
        return np.concatenate([super().overlay(alpha), self.chart(self.cam, self.explained)])

    def panel(self, alpha: float, caption: str) -> np.ndarray:
        """The picture, and for a mistake its true class's beside it, over the caption."""
        row = np.concatenate([self.overlay(alpha), *([self.contrast.overlay(alpha)] if self.contrast else [])], axis=1)
        return np.concatenate([row, caption_strip(row.shape[1], caption)])


def _with_chart(explanation: Explanation, chart: Callable) -> SensorExplanation:
    fields = {f.name: getattr(explanation, f.name) for f in dataclasses.fields(explanation)}
    contrast = explanation.contrast and _with_chart(explanation.contrast, chart)
    return SensorExplanation(**(fields | {"contrast": contrast}), chart=chart)


class SensorStages(ClassifyStages):
    """Classification, binary and regression models without convolutions, on windows of flat features."""

    windows = True  # deploy.zip's results have the windows' columns

    def __init__(self, explainer: Explainer, features: FeatureSet, *args, **kwargs):
        """As ClassifyStages; where the features are not samples, each sample's raw signal is fetched
        for its windows' pictures (when the source offers it: Studio, an API key)."""
        self.features = features
        super().__init__(explainer, SensorInputs(features, explainer), *args, **kwargs)
        why = "its windows are drawn without their raw signal"
        self._signals = PerSample(features.signal, why) if self.inputs.traces else None
        layout = self.inputs.layout
        log.info("the %d features of %s, by axis: %s", len(layout.axis), layout.block, ", ".join(layout.axes))
        if layout.note:
            log.warning("warning: %s", layout.note)

    def _frame(self) -> None:
        """No summaries of pictures: the class summaries are the feature groups' weights."""
        return None

    def prepare(self, sample) -> Prepared:
        """As ClassifyStages; the sample's raw signal starts downloading."""
        sample_id = self.features.windows[sample.path].sample_id
        if self._signals is not None and sample_id is not None:
            self._signals.start(sample_id)
        return super().prepare(sample)

    def _finish(self, explainer: Explainer, prepared: Prepared, maps: SampleMaps) -> Explanation:
        values, image = self._signal(prepared), prepared.image
        if values is not None:
            image = self.inputs.with_signal(image, values)
        explanation = explainer.finish(image, prepared.geometry, maps, heatmap=self.inputs.heatmap)
        return _with_chart(explanation, self.inputs.chart)

    def _signal(self, prepared: Prepared) -> np.ndarray | None:
        """The window's raw signal (steps, axes), where its sample's came."""
        window = self.features.windows[prepared.sample.path]
        if self._signals is None or window.sample_id is None or window.start_ms is None:
            return None
        signal = self._signals.get(window.sample_id)
        return None if signal is None else signal.window(window.start_ms, window.end_ms, self.inputs.layout.axes)

    def close(self) -> None:
        """Stop fetching raw signals (the job ended, or was stopped)."""
        if self._signals is not None:
            self._signals.close()

    def _peak(self, explanation: Explanation, prepared: Prepared) -> None:
        """A window's attribution peaks at a feature (its WindowFacts), not at a file's pixel."""
        return None

    def _record(self, prepared: Prepared, explanation: Explanation, *beside) -> SampleRecord:
        record = super()._record(prepared, explanation, *beside)
        window = self.features.windows[prepared.sample.path]
        facts = WindowFacts(window.sample_id, window.start_ms, window.end_ms, None, None)
        layout, weights = self.inputs.layout, explanation.cam.reshape(-1)
        groups = group_shares(weights, layout)
        contrast = explanation.contrast and group_shares(explanation.contrast.cam.reshape(-1), layout)
        if weights.max() > 0:
            top = int(np.argmax(weights))
            facts = dataclasses.replace(
                facts, peak_feature=layout.name(top), peak_frame=layout.position[top], peak_block=layout.block
            )
            if layout.timed and layout.frequency and window.start_ms is not None:
                facts = dataclasses.replace(facts, peak_ms=window.start_ms + layout.ms(layout.position[top] + 0.5))
        return dataclasses.replace(record, window=facts, weights=GroupWeights(groups, contrast))

    def _weight_sums(self) -> WeightSums:
        return WeightSums(self.inputs.layout)
