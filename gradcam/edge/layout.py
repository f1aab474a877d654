"""Where each DSP block's features lie in a model's input, and the way back from a map to them; and the
frequency each block's columns stand for (`band_centres`).

Edge Impulse concatenates the outputs of the DSP blocks that feed a learn block, in the impulse's
order, each flattened frame by frame (frames x columns: filters, cepstra or FFT bins). The model
reshapes that vector to its own (rows, columns), which need not follow frames: a real model reshapes
MFCC 49x13 + MFE 99x40 + spectrogram 99x65 = 11,032 features to (1576, 7), so a row can straddle two
blocks. A map lives on the model's input; read row by row it is a map over the flat feature vector,
and cut at the blocks' offsets it is a map over each block's frames and columns. One block whose rows
are frames (the usual audio model) is the same mechanism with one piece.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from gradcam.errors import GradcamError


@dataclass(frozen=True)
class BlockLayout:
    """One DSP block's features in each window's flat vector: from `offset`, frames x columns."""

    name: str
    offset: int
    frames: int
    columns: int
    band_centres: list[float] | None = None  # Hz per column (MFE, spectrogram); None: not frequencies, or not known

    @property
    def size(self) -> int:
        return self.frames * self.columns


@dataclass(frozen=True)
class FeaturePeak:
    """Where a map peaks among the features: the block (its index), the frame, and the column where
    the map tells columns apart (None: the map is flat across the frame's columns, as a 1-D model's
    whose rows are frames)."""

    block: int
    frame: int
    column: int | None


@dataclass(frozen=True)
class FeatureLayout:
    """The blocks side by side in the model's input, which the model sees as `shape` (rows, columns)."""

    blocks: tuple[BlockLayout, ...]
    shape: tuple[int, int]

    @classmethod
    def of(
        cls,
        shapes: Sequence[tuple[str, tuple[int, int], list[float] | None]],
        model_shape: tuple[int, int],
    ) -> FeatureLayout:
        """The layout of blocks given as (name, (frames, columns), band centres), checked against the
        model's input (rows, columns)."""
        blocks, offset = [], 0
        for name, (frames, columns), centres in shapes:
            blocks.append(BlockLayout(name, offset, frames, columns, centres))
            offset += frames * columns
        rows, columns = model_shape
        if offset != rows * columns:
            parts = " + ".join(f"{b.name} {b.frames}x{b.columns}" for b in blocks)
            raise GradcamError(
                f"the DSP blocks' features ({parts} = {offset} values) do not fill the model's input "
                f"({rows} x {columns} = {rows * columns} values)"
            )
        return cls(tuple(blocks), model_shape)

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Anything over the model's input (rows, columns), or its flat vector -> per block (frames, columns)."""
        flat = np.asarray(values).reshape(-1)
        return [flat[b.offset : b.offset + b.size].reshape(b.frames, b.columns) for b in self.blocks]

    def heat(self, cam: np.ndarray) -> list[np.ndarray]:
        """A map at its layer's resolution (h, w) -> its heat over each block's features (frames, columns):
        upsampled to the model's input, then cut at the blocks."""
        rows, columns = self.shape
        return self.split(cv2.resize(cam.astype(np.float32), (columns, rows), interpolation=cv2.INTER_LINEAR))

    def peak(self, heats: list[np.ndarray]) -> FeaturePeak | None:
        """The hottest feature (the first in the vector's order, among ties); None for a blank map.
        Its column is the middle of the frame's hottest columns, where the frame's heat varies."""
        flat = np.concatenate([h.reshape(-1) for h in heats])
        if not flat.max() > 0:
            return None
        index = int(np.argmax(flat))
        block = next(i for i, b in enumerate(self.blocks) if index < b.offset + b.size)
        frame = (index - self.blocks[block].offset) // self.blocks[block].columns
        row = heats[block][frame]
        if np.ptp(row) <= 1e-6 * row.max():
            return FeaturePeak(block, frame, None)
        hottest = np.flatnonzero(row >= row.max() - 1e-6 * row.max())
        return FeaturePeak(block, frame, int(hottest[len(hottest) // 2]))


def _mel(hz: float) -> float:
    return 1127 * math.log1p(hz / 700)


def mel_centres(filters: int, low: float, high: float) -> list[float]:
    """The centre frequencies (Hz) of a mel filterbank's triangular filters between low and high."""
    step = (_mel(high) - _mel(low)) / (filters + 1)
    return [700 * math.expm1((_mel(low) + step * (k + 1)) / 1127) for k in range(filters)]


def band_centres(kind: str, config: dict[str, str], frequency: float | None) -> list[float] | None:
    """Each column's centre frequency (Hz) from the DSP block's parameters (as its metadata gives
    them, as text): an MFE's mel filters, a spectrogram's FFT bins; None for MFCC (cepstra are not
    frequencies) or when a parameter is missing."""
    try:
        if kind == "mfe" and frequency:
            high = float(config.get("high_frequency") or 0) or frequency / 2
            return mel_centres(int(config["num_filters"]), float(config.get("low_frequency") or 0), high)
        if kind == "spectrogram" and frequency:
            fft = int(config["fft_length"])
            return [k * frequency / fft for k in range(fft // 2 + 1)]
    except (KeyError, ValueError):
        return None
    return None
