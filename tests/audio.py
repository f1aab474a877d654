"""A synthetic keyword data set, as Edge Impulse would serve it: 1 s clips at 16 kHz, each a 150-250 ms
burst of its class's frequency band at a random time in noise (and a broadband knock of no class,
as loud, elsewhere), and their MFE features computed the way Edge Impulse's MFE block documents:
pre-emphasis, 20 ms frames every 10 ms, power spectrum, a mel filterbank, decibels, the noise floor,
quantised to 1/256; and MFCC features from the same filterbank as EI's MFCC block documents them
(natural log, DCT-II, the frame's log energy as c0, each cepstrum normalised over the window). They
need not equal Edge Impulse's bit for bit: the block takes the features as given, and these are only
its test data.

Two data designs (`others`): a burst among two sounds of no class (the default), or a lone burst in noise.

The knock makes the maps' sanity check mean something: without it, "the loudest frames" would be
the burst, and any energy detector, a network with random weights too, would point at it."""

from __future__ import annotations

import functools
import io
import wave
from dataclasses import dataclass

import numpy as np

RATE = 16_000
CLIP_MS = 1000
FRAME, STRIDE, FFT, FILTERS = 320, 160, 256, 40  # 20 ms frames every 10 ms, EI's MFE defaults
FRAMES = (RATE - (FRAME - STRIDE)) // STRIDE  # 99
CEPSTRA = 13  # EI's MFCC default
NOISE_FLOOR_DB = -52
PRE_EMPHASIS = 0.98
MFE_PARAMETERS = {  # the DSP block's parameters as the impulse lists them
    "frame_length": 0.02,
    "frame_stride": 0.01,
    "num_filters": FILTERS,
    "fft_length": FFT,
    "low_frequency": 0,
    "high_frequency": 0,
    "noise_floor_db": NOISE_FLOOR_DB,
}


def mel_points(filters: int = FILTERS, low: float = 0, high: float = RATE / 2) -> np.ndarray:
    """The filterbank's filters + 2 edge frequencies in Hz, evenly spaced in mel (1127 ln(1 + f/700))."""
    mels = np.linspace(1127 * np.log1p(low / 700), 1127 * np.log1p(high / 700), filters + 2)
    return 700 * (np.exp(mels / 1127) - 1)


def _filters_band(first: int, last: int) -> tuple[float, float]:
    """The frequencies (Hz) from the centre of mel filter `first` to that of filter `last`."""
    points = mel_points()
    return float(points[first + 1]), float(points[last + 1])


# Every sound covers six mel filters' centres: a class's burst, or a sound of no class between them.
BANDS = {"yes": _filters_band(4, 9), "no": _filters_band(16, 21), "stop": _filters_band(28, 33)}
CLASSES = list(BANDS)
OTHER_BANDS = [_filters_band(10, 15), _filters_band(22, 27), _filters_band(34, 39)]
OTHER_SOUNDS = 2  # per clip, where there is room


@dataclass(frozen=True)
class Clips:
    audio: np.ndarray  # (n, RATE) int16
    labels: np.ndarray  # (n,) class indices
    bursts: np.ndarray  # (n, 2): the burst's first and last sample


def _band_noise(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """Noise in one band, with the spectral tilt of natural sounds (louder low down) that the MFE's
    pre-emphasis evens out: every band then reaches the features about as loud."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    spectrum /= np.abs(1 - PRE_EMPHASIS * np.exp(-2j * np.pi * np.maximum(freqs, low) / RATE))
    noise = np.fft.irfft(spectrum, n)
    return noise / noise.std()


def clips(n: int, seed: int, others: int = OTHER_SOUNDS) -> Clips:
    """n seeded clips: noise, one class burst each, and `others` sounds of no class (where there is room)."""
    rng = np.random.default_rng(seed)
    audio = 0.01 * np.stack([_band_noise(rng, RATE, 20, RATE / 2) for _ in range(n)])
    labels = rng.integers(0, len(CLASSES), n)
    bursts = np.zeros((n, 2), int)
    for i, label in enumerate(labels):
        length = int(rng.integers(150, 251)) * RATE // 1000
        start = int(rng.integers(0, RATE - length))
        envelope = np.hanning(length)
        audio[i, start : start + length] += (
            rng.uniform(0.15, 0.3) * envelope * _band_noise(rng, length, *BANDS[CLASSES[label]])
        )
        bursts[i] = start, start + length - 1
        taken = [(start, start + length)]
        for _ in range(others):
            _other_sound(rng, audio[i], taken)
    return Clips(np.clip(audio * 32767, -32768, 32767).astype(np.int16), labels, bursts)


def _other_sound(rng: np.random.Generator, clip: np.ndarray, taken: list[tuple[int, int]]) -> None:
    """A sound of no class (a burst of another band), as long and as loud as a class's burst, at
    least 50 ms away from the sounds already `taken` (start, end), if there is room."""
    size, gap = int(rng.integers(150, 251)) * RATE // 1000, RATE // 20
    free = [
        t
        for t in range(0, RATE - size, RATE // 100)
        if all(t + size + gap < start or t > end + gap for start, end in taken)
    ]
    if free:
        at = int(rng.choice(free))
        taken.append((at, at + size))
        band = OTHER_BANDS[int(rng.integers(len(OTHER_BANDS)))]
        clip[at : at + size] += rng.uniform(0.15, 0.3) * np.hanning(size) * _band_noise(rng, size, *band)


@functools.cache
def _filterbank() -> np.ndarray:
    bins = np.floor((FFT + 1) * mel_points() / RATE).astype(int)
    bank = np.zeros((FILTERS, FFT // 2 + 1))
    for k in range(FILTERS):
        left, centre, right = bins[k : k + 3]
        bank[k, left:centre] = (np.arange(left, centre) - left) / max(centre - left, 1)
        bank[k, centre:right] = (right - np.arange(centre, right)) / max(right - centre, 1)
    return bank


def _power(clip: np.ndarray) -> np.ndarray:
    """One int16 clip -> its frames' power spectra (FRAMES, FFT / 2 + 1), after pre-emphasis."""
    x = clip.astype(np.float64) / 2**15
    x = np.append(x[0], x[1:] - PRE_EMPHASIS * x[:-1])
    frames = np.stack([x[i * STRIDE : i * STRIDE + FRAME] for i in range(FRAMES)])
    return np.abs(np.fft.rfft(frames, FFT)) ** 2 / FFT


def mfe(clip: np.ndarray) -> np.ndarray:
    """One int16 clip -> (FRAMES, FILTERS) float32 in 0..1, quantised to 1/256."""
    energies = 10 * np.log10(np.maximum(_power(clip) @ _filterbank().T, 1e-30))
    scaled = np.clip((energies - NOISE_FLOOR_DB) / (-NOISE_FLOOR_DB + 12), 0, 1)
    return (np.round(scaled * 256) / 256).astype(np.float32)


@functools.cache
def _dct(cepstra: int) -> np.ndarray:
    """The orthonormal DCT-II matrix (cepstra, FILTERS)."""
    k, n = np.arange(cepstra)[:, None], np.arange(FILTERS)[None]
    matrix = np.sqrt(2 / FILTERS) * np.cos(np.pi * k * (2 * n + 1) / (2 * FILTERS))
    matrix[0] /= np.sqrt(2)
    return matrix


def mfcc(clip: np.ndarray, cepstra: int = CEPSTRA) -> np.ndarray:
    """One int16 clip -> (FRAMES, cepstra) float32: DCT-II of the log mel energies, c0 the frame's
    log energy, each cepstrum normalised to zero mean and unit variance over the window (EI's
    sliding window of 101 frames covers a 99-frame window)."""
    power = _power(clip)
    values = np.log(np.maximum(power @ _filterbank().T, 1e-30)) @ _dct(cepstra).T
    values[:, 0] = np.log(np.maximum(power.sum(axis=1), 1e-30))
    values = (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), 1e-8)
    return values.astype(np.float32)


COLUMNS = {"mfe": FILTERS, "mfcc": CEPSTRA}  # columns per frame, by DSP block


def features(data: Clips, kind: str = "mfe", cepstra: int = CEPSTRA) -> np.ndarray:
    """(n, FRAMES * columns) float32 (kind: mfe, or mfcc with `cepstra`): one flattened row per window,
    frame by frame, as EI serves them."""
    compute = mfe if kind == "mfe" else functools.partial(mfcc, cepstra=cepstra)
    return np.stack([compute(clip).reshape(-1) for clip in data.audio])


def burst_frames(data: Clips) -> np.ndarray:
    """(n, 2): the frames whose centre lies in the burst, first and last."""
    centres = np.arange(FRAMES) * STRIDE + FRAME / 2
    first = np.searchsorted(centres, data.bursts[:, 0])
    last = np.searchsorted(centres, data.bursts[:, 1], side="right") - 1
    return np.stack([first, last], axis=1)


def sample_ids(n: int) -> np.ndarray:
    return 1000 + np.arange(n)


def labels_4col(data: Clips) -> np.ndarray:
    """The Dashboard's "Download block output" labels: int32 (label index from 1, sample id, start ms, end ms)."""
    n = len(data.labels)
    return np.stack([data.labels + 1, sample_ids(n), np.zeros(n, int), np.full(n, CLIP_MS)], axis=1).astype(np.int32)


def labels_onehot(data: Clips) -> np.ndarray:
    return np.eye(len(CLASSES), dtype=np.float32)[data.labels]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def wav_bytes(clip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(clip.astype("<i2").tobytes())
    return buffer.getvalue()
