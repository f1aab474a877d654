"""Synthetic motion windows and Edge Impulse's features of them, for the fixtures of models without
convolutions (tests/fixtures/make_motion_family.py).

Three accelerometer axes at 62.5 Hz in 2 s windows. The class is told by one axis (accY): a sine at
the class's frequency. accX carries a sine just as strong (the "distractor" design) or twice as strong
("loud"), at a class's frequency drawn apart from the window's; accZ holds gravity. Every axis has
noise. In the "ordinal" design the class is told by the size of accY's swing instead (small, medium,
large, at one frequency), and accX swings at a size drawn apart from the window's: the middle class's
accY is then the median window's, which a baseline at the median erases.

The features are computed as Edge Impulse's processing blocks compute them (edgeimpulse/processing-blocks
@9b0ceb2): `raw/dsp.py` (the samples, interleaved by time, axes within a step), `flatten/dsp.py` (per
axis: average, minimum, maximum, RMS, stdev, skewness, kurtosis) and `spectral_analysis/dsp.py` at
implementation version 4, FFT analysis, no filter (per axis: RMS, skewness, kurtosis, spectral skewness,
spectral kurtosis, then log10 spectral power of each FFT bin but DC, from a Welch max-hold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ["slow", "medium", "fast"]
AXES = ["accX", "accY", "accZ"]
INFORMATIVE = 1  # accY
FREQUENCY = 62.5  # Hz
STEPS = 125  # samples per axis: 2 s
HERTZ = [2.0, 6.0, 12.0]  # per class
AMPLITUDE = 1.5
DESIGNS = {"distractor": 1.0, "loud": 2.0, "ordinal": 1.0}  # accX's amplitude over accY's
SWINGS = [0.4, 1.0, 1.6]  # the ordinal design: accY's amplitude per class, over AMPLITUDE, at HERTZ[1]
NOISE = 0.25
FFT_LENGTH = 32
SPECTRAL_OPTIONS = {"fft_length": FFT_LENGTH, "filter_type": "none", "do_log": True, "do_fft_overlap": True}
BLOCKS = ("spectral-analysis", "raw")


@dataclass(frozen=True)
class Windows:
    signals: np.ndarray  # (n, STEPS, axes)
    labels: np.ndarray  # (n,) class index


def windows(n: int, seed: int, design: str = "distractor") -> Windows:
    """n seeded windows, classes balanced in turn."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS) / FREQUENCY
    labels = np.arange(n) % len(CLASSES)
    signals = rng.normal(0, NOISE, (n, STEPS, len(AXES)))
    ordinal = design == "ordinal"
    for i, label in enumerate(labels):
        for axis, cue, loudness in ((INFORMATIVE, label, 1.0), (0, rng.integers(len(CLASSES)), DESIGNS[design])):
            swing, hertz = (SWINGS[cue], HERTZ[1]) if ordinal else (1.0, HERTZ[cue])
            scale = AMPLITUDE * loudness * swing * rng.uniform(0.85, 1.15)
            signals[i, :, axis] += scale * np.sin(2 * np.pi * hertz * t + rng.uniform(0, 2 * np.pi))
    signals[:, :, 2] += 9.81
    return Windows(signals.astype(np.float32), labels)


def _skew(x: np.ndarray) -> float:
    """scipy.stats.skew, biased (its default)."""
    d = x - x.mean()
    return float(np.mean(d**3) / np.mean(d**2) ** 1.5)


def _kurtosis(x: np.ndarray) -> float:
    """scipy.stats.kurtosis: Fisher's, biased (its defaults)."""
    d = x - x.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2 - 3)


def _welch_max_hold(fx: np.ndarray, nfft: int) -> np.ndarray:
    """common/spectrum.py's welch_max_hold with n_overlap nfft / 2."""
    powers, ix = np.zeros(nfft // 2 + 1), 0
    while ix <= len(fx):
        powers = np.maximum(powers, np.abs(np.fft.rfft(fx[ix : ix + nfft], nfft)) ** 2 / nfft)
        ix += nfft - nfft // 2
    return powers


def spectral(signal: np.ndarray) -> tuple[list[float], list[str]]:
    """One window's spectral-analysis features (v4, FFT, no filter) and one axis's labels."""
    features, labels = [], []
    spacing = FREQUENCY / FFT_LENGTH
    for axis in range(signal.shape[1]):
        fx = signal[:, axis] - signal[:, axis].mean()
        powers = _welch_max_hold(fx, FFT_LENGTH)
        features += [float(np.sqrt(np.mean(fx**2))), _skew(fx), _kurtosis(fx), _skew(powers), _kurtosis(powers)]
        features += list(np.log10(np.where(powers == 0, 1e-10, powers))[1:])
        labels = ["RMS", "Skewness", "Kurtosis", "Spectral Skewness", "Spectral Kurtosis"]
        labels += [
            f"Spectral Power {round(k * spacing - spacing / 2, 2)} - {round(k * spacing + spacing / 2, 2)} Hz"
            for k in range(1, FFT_LENGTH // 2 + 1)
        ]
    return features, labels


def flatten(signal: np.ndarray) -> list[float]:
    """One window's flatten features, every statistic on."""
    features = []
    for axis in range(signal.shape[1]):
        x = signal[:, axis]
        rms = float(np.sqrt(np.mean(x**2)))
        features += [float(x.mean()), float(x.min()), float(x.max()), rms, float(x.std()), _skew(x), _kurtosis(x)]
    return features


def features(data: Windows, block: str) -> np.ndarray:
    """The windows' features as the block computes them: float32 (n, features)."""
    if block == "raw":
        return data.signals.reshape(len(data.signals), -1)
    compute = {"spectral-analysis": lambda s: spectral(s)[0], "flatten": flatten}[block]
    return np.array([compute(signal) for signal in data.signals], np.float32)


def labels_4col(data: Windows) -> np.ndarray:
    """The windows' labels as EI's y files hold them: label index from 1, sample id, start and end ms."""
    n = len(data.labels)
    return np.stack([data.labels + 1, np.arange(n) + 1000, np.zeros(n), np.full(n, 2000)], axis=1).astype(np.int32)


# --- The real motion projects in ../shared/real (imu-*, motion-*): their DSP block is Syntiant's IMU. ---

SYNTIANT_STEPS, SYNTIANT_PAD = 200, 8  # 2 s at 100 Hz; zeros after the samples (1,808 = 200 x 9 + 8)
# The Syntiant block's scaling is not public. This stand-in (gyroscope / 64, the rest as recorded)
# gives the real IMU model 38 of the 40 real samples right (95%).
SYNTIANT_SCALE = np.array([1, 1, 1, 1 / 64, 1 / 64, 1 / 64, 1, 1, 1], np.float32)


def cbor_samples(export_zip) -> tuple[np.ndarray, list[str], list[str]]:
    """The real CBOR samples of an export zip (info.labels): values (n, steps, axes), labels, axes."""
    import io
    import json
    import zipfile

    import cbor2

    with zipfile.ZipFile(export_zip) as archive:
        files = json.loads(archive.read("info.labels"))["files"]
        payloads = [cbor2.load(io.BytesIO(archive.read(f["path"])))["payload"] for f in files]
    axes = [sensor["name"] for sensor in payloads[0]["sensors"]]
    values = np.array([p["values"][:SYNTIANT_STEPS] for p in payloads], np.float32)
    return values, [f["label"]["label"] for f in files], axes


def syntiant(values: np.ndarray, axes: int) -> np.ndarray:
    """Windows (n, steps, all axes) -> the Syntiant IMU block's features of the first `axes`:
    interleaved by time, scaled, then the padding."""
    scaled = values[:, :, :axes] * SYNTIANT_SCALE[:axes]
    padding = np.zeros((len(values), SYNTIANT_PAD), np.float32)
    return np.concatenate([scaled.reshape(len(values), -1), padding], axis=1)
