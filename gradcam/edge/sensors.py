"""How a flat DSP block of a motion or sensor impulse built its features, so that an attribution per
feature reads per axis, per kind of feature and, where the features are samples, along time.

The order of each block's features, read in its code (edgeimpulse/processing-blocks @9b0ceb2):
- `raw`: the window's samples as they come, interleaved: step 0's axes, then step 1's, ...;
- `flatten`: per axis, the statistics turned on, in the order average, minimum, maximum, RMS, stdev,
  skewness, kurtosis;
- `spectral-analysis`, FFT analysis (implementation 2 to 4): per axis RMS, skewness, kurtosis, (4:
  spectral skewness and kurtosis,) then the log spectral power of each FFT bin the filter leaves (DC
  skipped); the extra low-frequency features (4) follow every axis's, per axis again. Implementation
  1: per axis RMS, each spectral peak's frequency and height, the power between each pair of edges;
- `syntiant-imu` (not in that repository): the samples interleaved as `raw`, then zeros to a multiple
  of 16 (checked on real rows: 200 steps x 9 axes + 8 = 1,808, and 200 x 3 + 8 = 608).
Anything else (wavelets, custom blocks), or a count that does not match: grouped by axis, each
axis's features taken to lie together, and the layout's `note` says so.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradcam.errors import GradcamError, not_found

SAMPLES = ("raw", "syntiant-imu")  # blocks whose features are the window's samples
STATISTICS = ("average", "minimum", "maximum", "rms", "stdev", "skewness", "kurtosis")
STATISTIC_NAMES = ("Average", "Minimum", "Maximum", "RMS", "Stdev", "Skewness", "Kurtosis")


@dataclass(frozen=True)
class SensorLayout:
    """Each feature's axis (-1: padding), its kind, and its place along its axis's lane: a time step
    where the features are samples (`frequency` then gives the steps per second), else its index
    among its axis's features."""

    block: str
    axes: tuple[str, ...]
    axis: tuple[int, ...]
    kind: tuple[str, ...]
    position: tuple[int, ...]
    timed: bool = False  # positions are time steps (the features are samples)
    named: bool = True  # each feature's kind is known (else grouped by axis alone)
    frequency: float | None = None  # the samples' rate (Hz) where known
    note: str | None = None  # what was assumed where the features could not be named

    @property
    def positions(self) -> int:
        """The length of the longest lane."""
        return max(self.position) + 1

    def name(self, i: int) -> str:
        """Feature i as a person reads it: `accY RMS`, `accX at 1230 ms`."""
        if self.axis[i] < 0:
            return "padding"
        if self.timed:
            at = f"at {self.ms(self.position[i])} ms" if self.frequency else f"step {self.position[i]}"
            return f"{self.axes[self.axis[i]]} {at}"
        return f"{self.axes[self.axis[i]]} {self.kind[i]}"

    def ms(self, step: float) -> int:
        """A time step's start in ms from the window's start (the frequency known)."""
        return round(step * 1000 / self.frequency)

    @functools.cached_property
    def groups(self) -> tuple[str, ...]:
        """The groups the per-class sums keep: per axis and kind where the features are named and not
        samples, else per axis; in the features' order. Worked out once per layout."""
        return tuple(dict.fromkeys(self._group(i) for i in range(len(self.axis)) if self.axis[i] >= 0))

    @functools.cached_property
    def group_index(self) -> np.ndarray:
        """Each feature's group (an index into `groups`; -1: padding). Worked out once per layout."""
        index = {group: k for k, group in enumerate(self.groups)}
        return np.array([index[self._group(i)] if self.axis[i] >= 0 else -1 for i in range(len(self.axis))])

    def _group(self, i: int) -> str:
        named = self.named and not self.timed
        return f"{self.axes[self.axis[i]]} {self.kind[i]}" if named else self.axes[self.axis[i]]


@dataclass(frozen=True)
class Signal:
    """A sample's raw data as Studio stores it: values (steps, axes), the interval between steps, the
    axes' names."""

    values: np.ndarray
    interval_ms: float
    axes: tuple[str, ...]

    def window(self, start_ms: int, end_ms: int, axes: tuple[str, ...]) -> np.ndarray | None:
        """The steps of [start_ms, end_ms) of these axes (steps, axes), by name (by order where the names
        differ but the counts agree); None where the sample does not hold them."""
        if all(a in self.axes for a in axes):
            columns = [self.axes.index(a) for a in axes]
        elif len(axes) == len(self.axes):
            columns = list(range(len(axes)))
        else:
            return None
        first, last = round(start_ms / self.interval_ms), round(end_ms / self.interval_ms)
        part = self.values[first:last, columns]
        return part if len(part) > 1 else None


def read_config(path: Path | None, block: str | None, axes: list[str] | None, count: int) -> SensorLayout:
    """The layout of `count` features from a JSON file (`from_config`; None: the flags alone)."""
    if path is None:
        return from_config({}, count, block, axes)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise GradcamError(not_found(path, "DSP config", "a JSON file")) from None
    except (OSError, ValueError) as exc:
        raise GradcamError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(document, dict):
        raise GradcamError(f"{path}: expected a JSON object describing the DSP block")
    return from_config(document, count, block, axes)


def from_config(document: Mapping, count: int, block: str | None = None, axes: list[str] | None = None) -> SensorLayout:
    """The layout of `count` features from a DSP block described as JSON: a deployment-metadata.json
    (its impulse's first DSP block), an impulse's `dspBlocks` entry, or the block's parameters with
    `type`, `axes`, `frequency`, `window_size_ms` and `implementation_version` beside them; `block`
    and `axes` (the flags) win over the document's."""
    entry = dict(document)
    if isinstance(entry.get("impulse"), Mapping):
        entry = dict((entry["impulse"].get("dspBlocks") or [{}])[0])
    meta = entry.get("metadata") if isinstance(entry.get("metadata"), Mapping) else {}
    options = (meta.get("dspConfig") or {}).get("options") or entry.get("options") or entry

    def first(*keys: str):
        return next((place[k] for place in (entry, meta) for k in keys if place.get(k) is not None), None)

    return sensor_layout(
        block or first("type") or "features",
        axes or first("axes"),
        count,
        options,
        first("frequency", "frequencyHz"),
        first("window_size_ms", "windowSizeMs"),
        first("implementation_version", "implementationVersion"),
    )


def sensor_layout(
    block: str,
    axes: list[str] | None,
    count: int,
    options: Mapping[str, object] | None = None,
    frequency: float | None = None,
    window_ms: float | None = None,
    version: int | None = None,
) -> SensorLayout:
    """The layout of `count` features a block of this type computed from these axes, with its
    parameters (`options`, as the impulse's dspConfig gives them; names with - or _), the input's
    frequency and window, and the block's implementation version."""
    axes = tuple(axes or ())
    options = {str(k).replace("-", "_"): v for k, v in (options or {}).items()}
    if not axes:
        return _by_axis(block, ("features",), count, "the axes are not known: the features are one group")
    if block in SAMPLES:
        return _samples(block, axes, count, frequency, window_ms)
    kinds = None
    if block == "flatten":
        kinds = [name for key, name in zip(STATISTICS, STATISTIC_NAMES, strict=True) if _flag(options, key, True)]
    elif block == "spectral-analysis" and frequency:
        kinds = _spectral_kinds(options, float(frequency), version or 1)
    if kinds is None:
        return _by_axis(block, axes, count, f"the features of a {block} block cannot be named")
    low = [kind for kind in kinds if kind.endswith(" LF")]
    main = [kind for kind in kinds if not kind.endswith(" LF")]
    if len(axes) * len(kinds) != count:
        expected = f"{len(axes)} axes x {len(kinds)} = {len(axes) * len(kinds)}"
        return _by_axis(block, axes, count, f"{count} features where its parameters give {expected}")
    order = [(a, k, j) for a in range(len(axes)) for j, k in enumerate(main)]
    order += [(a, k, len(main) + j) for a in range(len(axes)) for j, k in enumerate(low)]
    return SensorLayout(block, axes, *(tuple(column) for column in zip(*order, strict=True)))


def _samples(block: str, axes: tuple[str, ...], count: int, frequency, window_ms) -> SensorLayout:
    """Samples interleaved by time, then padding (the steps from the window where known)."""
    steps = count // len(axes)
    if frequency and window_ms:
        steps = min(steps, round(float(window_ms) * float(frequency) / 1000))
    sampled = steps * len(axes)
    axis = tuple(i % len(axes) if i < sampled else -1 for i in range(count))
    position = tuple(min(i // len(axes), steps - 1) for i in range(count))
    note = None if frequency else "the sampling frequency is not known: times are given in steps"
    rate = float(frequency) if frequency else None
    return SensorLayout(block, axes, axis, ("sample",) * count, position, timed=True, frequency=rate, note=note)


def _by_axis(block: str, axes: tuple[str, ...], count: int, why: str) -> SensorLayout:
    """Features grouped by axis alone, each axis's taken to lie together (one group if they cannot)."""
    if count % len(axes):
        axes, why = ("features",), f"{why}; {count} features do not split over {len(axes)} axes: they are one group"
    per = count // len(axes)
    note = why if len(axes) == 1 else f"{why}: grouped by axis, each axis's {per} features taken to lie together"
    kinds = tuple(f"feature {i % per + 1}" for i in range(count))
    axis, position = tuple(i // per for i in range(count)), tuple(i % per for i in range(count))
    return SensorLayout(block, axes, axis, kinds, position, named=False, note=note)


def _flag(options: Mapping[str, object], key: str, default: bool) -> bool:
    value = options.get(key, default)
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")


def _number(options: Mapping[str, object], key: str, default: float) -> float:
    try:
        return float(options.get(key, default))
    except (TypeError, ValueError):
        return default


def _spectral_kinds(options: Mapping[str, object], frequency: float, version: int) -> list[str] | None:
    """One axis's feature kinds from a spectral-analysis block's parameters; None: not named (wavelets)."""
    if version >= 3 and str(options.get("analysis_type", "FFT")) != "FFT":
        return None
    fft = int(_number(options, "fft_length", 16))
    if version == 1:
        edges = [float(e) for e in str(options.get("spectral_power_edges", "0.1, 0.5, 1.0, 2.0, 5.0")).split(",")]
        peaks = int(_number(options, "spectral_peaks_count", 3))
        kinds = ["RMS"] + [f"Peak {p + 1} {what}" for p in range(peaks) for what in ("Freq", "Height")]
        return kinds + [f"Spectral Power {a:g} - {b:g} Hz" for a, b in itertools.pairwise(edges)]
    rate = frequency / (int(_number(options, "input_decimation_ratio", 1)) if version >= 4 else 1)
    kinds = _fft_kinds(options, rate, fft, version >= 4, "")
    if version >= 4 and _flag(options, "extra_low_freq", False):
        kinds += _fft_kinds(options, rate / 10, fft, True, " LF")
    return kinds


def _fft_kinds(options: Mapping[str, object], rate: float, fft: int, spectral_stats: bool, suffix: str) -> list[str]:
    """extract_spec_features' labels: statistics, then the FFT bins the filter leaves."""
    kinds = ["RMS", "Skewness", "Kurtosis"] + (["Spectral Skewness", "Spectral Kurtosis"] if spectral_stats else [])
    cutoff = min(_number(options, "filter_cutoff", 3), rate / 2)
    filter_type = str(options.get("filter_type", "none"))
    bin_value = cutoff * fft / rate
    start, stop = 1, fft // 2 + 1
    if filter_type == "high":
        start = max(1, int(bin_value - 0.5) + 1)
    elif filter_type == "low":
        stop = int(bin_value + 0.5) + 1
    spacing = rate / fft
    bands = [
        f"Spectral Power {round(k * spacing - spacing / 2, 2)} - {round(k * spacing + spacing / 2, 2)} Hz"
        for k in range(start, stop)
    ]
    return [kind + suffix for kind in kinds] + [band + suffix for band in bands]
