"""The features Edge Impulse computed for an audio (or other DSP) impulse -> windows to explain.

Edge Impulse serves a DSP block's output as `np.save` files (the Dashboard's "Download block output",
or the API's dsp-data endpoints): X, float32, one flattened row per window, frame by frame; y, the
windows' labels, in one of two layouts, told apart by content (a one-hot array with 4 classes has 4
columns too):
- int, 4 columns: label index (from 1, in the learn block's class order), sample id, window start
  and end in ms (the Dashboard's and custom learn blocks' documented layout);
- one-hot: a row of zeros with a single 1 per window.
The DSP block's metadata (Studio) gives what the npy files do not: which sample each row comes
from (`includedSamples`, in row order) and the window size and step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gradcam.edge.dataset import Sample
from gradcam.edge.sensors import SensorLayout, Signal
from gradcam.errors import GradcamError, not_found

LAYOUTS = "int labels with 4 columns (label index from 1, sample id, start ms, end ms) or one-hot rows"
RANGE_ROWS = 1000  # rows read to set the pictures' grey range


@dataclass(frozen=True)
class Window:
    """Where one row of features comes from; None where the inputs do not say."""

    row: int
    sample_id: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True)
class Timing:
    """The DSP block's metadata: its samples in row order (id, windows) and the windows' size and step."""

    samples: list[tuple[int, int]]
    window_ms: int
    increase_ms: int

    def windows(self) -> list[Window]:
        rows = [(sample_id, k) for sample_id, count in self.samples for k in range(count)]
        return [
            Window(row, sample_id, k * self.increase_ms, k * self.increase_ms + self.window_ms)
            for row, (sample_id, k) in enumerate(rows)
        ]


@dataclass(frozen=True)
class BlockFeatures:
    """One DSP block's output: a row of values per window (possibly memory-mapped), its shape (frames,
    columns, frame by frame; None: a lone block, read as the model's Reshape reads it), each
    column's frequency where known, and the values drawn black and white."""

    name: str
    values: np.ndarray
    shape: tuple[int, int] | None = None
    band_centres: list[float] | None = None  # Hz per column (MFE, spectrogram); None: not known
    sensor: SensorLayout | None = None  # a flat block's (motion, sensors): how its features were built
    grey_range: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or not len(self.values):
            shape = self.values.shape
            raise GradcamError(f"{self.name}: expected one row of features per window; got an array of shape {shape}")
        if self.shape is not None and self.shape[0] * self.shape[1] != self.values.shape[1]:
            frames, columns = self.shape
            raise GradcamError(
                f"{self.name}: windows of {self.values.shape[1]} values; its DSP block gives {frames} frames x "
                f"{columns} = {frames * columns}"
            )
        if self.sensor is not None and len(self.sensor.axis) != self.values.shape[1]:
            raise GradcamError(
                f"{self.name}: windows of {self.values.shape[1]} values; its DSP block ({self.sensor.block}) "
                f"gives {len(self.sensor.axis)}"
            )
        object.__setattr__(self, "grey_range", grey_range(self.values))


@dataclass
class FeatureSet:
    """The windows to explain as samples (their names, labels), each row's features (one part per DSP
    block, in the impulse's order) and origin."""

    source: Path
    blocks: list[BlockFeatures]
    samples: list[Sample]
    windows: dict[str, Window]  # by sample path
    sound: Callable[[int], bytes] | None = None  # a sample's audio as WAV, by sample id; None: not available
    signal: Callable[[int], Signal] | None = None  # a sample's raw data (motion), by sample id; None: not available
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def row(self, sample: Sample) -> np.ndarray:
        """A window's features as the model takes them: the blocks' rows side by side."""
        row = self.windows[sample.path].row
        return np.concatenate([np.asarray(block.values[row], np.float32) for block in self.blocks])

    def median(self, rows: int) -> np.ndarray:
        """Each feature's median over at most `rows` evenly spread windows, all blocks side by side."""
        return np.concatenate([np.median(spread_rows(b.values, rows), axis=0) for b in self.blocks])

    def spread(self, rows: int) -> np.ndarray:
        """At most `rows` evenly spread windows, all blocks side by side (rows, values)."""
        return np.concatenate([spread_rows(b.values, rows) for b in self.blocks], axis=1)

    @property
    def values(self) -> int:
        """Values per window, all blocks together."""
        return sum(block.values.shape[1] for block in self.blocks)

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.samples if s.label is not None})

    def close(self) -> None:
        """Nothing to release (the arrays are let go with the set)."""

    def __enter__(self) -> FeatureSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def joined(parts: list[FeatureSet]) -> FeatureSet:
    """Several categories' windows as one set (each block's features side by side in memory)."""
    blocks = [
        replace(block, values=np.concatenate([np.asarray(part.blocks[i].values) for part in parts]))
        for i, block in enumerate(parts[0].blocks)
    ]
    samples, windows, offset = [], {}, 0
    for part in parts:
        for sample in part.samples:
            window = part.windows[sample.path]
            if sample.path in windows:  # the same name in two categories
                sample = replace(sample, path=f"{sample.path}.{sample.category}")
            samples.append(sample)
            windows[sample.path] = replace(window, row=window.row + offset)
        offset += len(part.blocks[0].values)
    source = Path("+".join(part.source.name for part in parts))
    return replace(parts[0], source=source, blocks=blocks, samples=samples, windows=windows)


def load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise GradcamError(not_found(path, what, "an .npy file"))
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise GradcamError(f"{path}: not an .npy file ({exc})") from None


def label_rows(labels: np.ndarray, classes: list[str], name: str) -> list[tuple[str, Window | None]]:
    """Each row's label (a class name; a regression model, with no classes: the value) and, in the
    4-column layout, its sample and time range."""
    if not classes:
        return _values(np.asarray(labels), name)
    if labels.ndim != 2 or not len(labels):
        raise GradcamError(f"{name}: expected {LAYOUTS}; got an array of shape {labels.shape}")
    values = np.asarray(labels)
    if np.isin(values, (0, 1)).all() and (values.sum(axis=1) == 1).all():
        return _one_hot(values, classes, name)
    if values.shape[1] == 4 and np.array_equal(values, np.round(values)):
        return _four_columns(values.astype(np.int64), classes, name)
    raise GradcamError(f"{name}: expected {LAYOUTS}; its {values.shape[1]} columns are neither")


def _values(labels: np.ndarray, name: str) -> list[tuple[str, None]]:
    """A regression model's labels: one number per window ((windows,) or (windows, 1))."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number) or not np.isfinite(labels).all():
        raise GradcamError(f"{name}: expected one number per window for a regression model; got {labels.shape}")
    return [(str(float(value)), None) for value in labels]


def _one_hot(values: np.ndarray, classes: list[str], name: str) -> list[tuple[str, None]]:
    if values.shape[1] != len(classes):
        raise GradcamError(f"{name}: one-hot labels of {values.shape[1]} classes for a model with {len(classes)}")
    return [(classes[i], None) for i in values.argmax(axis=1)]


def _four_columns(values: np.ndarray, classes: list[str], name: str) -> list[tuple[str, Window]]:
    index = values[:, 0]
    if index.min() < 1 or index.max() > len(classes):
        raise GradcamError(
            f"{name}: label index {index.min() if index.min() < 1 else index.max()} out of range: expected 1 to "
            f"{len(classes)} (the model's classes, counted from 1)"
        )
    return [
        (classes[label - 1], Window(row, int(sample_id), int(start), int(end)))
        for row, (label, sample_id, start, end) in enumerate(values)
    ]


def window_name(window: Window) -> str:
    """A window's name in deploy.zip and the report: its sample and time range where known."""
    if window.sample_id is None:
        return f"window-{window.row:05d}"
    span = "" if window.start_ms is None else f".{window.start_ms}-{window.end_ms}ms"
    return f"sample-{window.sample_id}{span}"


def spread_rows(values: np.ndarray, count: int) -> np.ndarray:
    """At most `count` evenly spread rows of the windows' values (possibly memory-mapped), as float32."""
    rows = np.unique(np.linspace(0, len(values) - 1, min(len(values), count)).astype(int))
    return np.asarray(values[rows], np.float32)


def grey_range(features: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentiles of the values, over at most RANGE_ROWS evenly spread rows: one
    scale for every window's picture, so a quiet window looks quiet."""
    low, high = np.percentile(spread_rows(features, RANGE_ROWS), (1, 99))
    return float(low), float(high) if high > low else float(low) + 1.0


def feature_set(
    blocks: np.ndarray | list[BlockFeatures],
    labels: np.ndarray | None,
    classes: list[str],
    *,
    source: Path,
    category: str = "testing",
    timing: Timing | None = None,
    names: tuple[str, str] = ("features", "labels"),
) -> FeatureSet:
    """The windows of the DSP blocks' features (an array: one block) and their labels (None:
    unlabeled), their origin from the labels (4 columns) or the DSP block's metadata."""
    if isinstance(blocks, np.ndarray):
        blocks = [BlockFeatures(names[0], blocks)]
    count = len(blocks[0].values)
    for block in blocks[1:]:
        if len(block.values) != count:
            raise GradcamError(f"{block.name}: {len(block.values)} windows; {blocks[0].name} has {count}")
    rows = label_rows(labels, classes, names[1]) if labels is not None else [(None, None)] * count
    if len(rows) != count:
        raise GradcamError(f"{names[1]}: {len(rows)} labels for {count} windows of features in {names[0]}")
    timed = timing.windows() if timing else []
    if timed and len(timed) != count:
        raise GradcamError(f"{names[0]}: {count} windows, but the DSP metadata lists {len(timed)}")
    samples, windows = [], {}
    for row, (label, window) in enumerate(rows):
        window = window or (timed[row] if timed else Window(row))
        name = window_name(window)
        if name in windows:  # the same window listed twice
            name = f"{name}.row-{row}"
        samples.append(Sample(name, label, category))
        windows[name] = window
    return FeatureSet(source, blocks, samples, windows)


def open_features(
    features: list[Path],
    labels: Path | None,
    classes: list[str],
    category: str = "testing",
    shapes: list[tuple[int, int]] | None = None,
    sensor: Callable[[int], SensorLayout | None] | None = None,
) -> FeatureSet:
    """The Dashboard's "Download block output" files: X_<category>.npy of each DSP block (in the
    impulse's order; shapes: each block's frames x columns, needed for several) and one y_<category>.npy.
    sensor: a lone flat block's layout, from its count of features (motion and sensors)."""
    if len(features) > 1 and (shapes is None or len(shapes) != len(features)):
        raise GradcamError(
            f"{len(features)} features files: give each DSP block's frames x columns, in the same order "
            "(--feature-shapes 49x13,99x40)"
        )
    blocks = [
        BlockFeatures(path.name, load_npy(path, "features file"), shapes[i] if shapes else None)
        for i, path in enumerate(features)
    ]
    if sensor is not None and len(blocks) == 1 and blocks[0].values.ndim == 2:
        blocks = [replace(blocks[0], sensor=sensor(blocks[0].values.shape[1]))]
    y = load_npy(labels, "labels file") if labels is not None else None
    names = (str(features[0]), str(labels))
    return feature_set(blocks, y, classes, source=features[0], category=category, names=names)
