"""The parts of a model input that the model's own evidence (gradcam.engine.occlusion) hides one at a
time, in the input's own units: an image's patches, windows of each DSP block's time x frequency cells,
a flat vector's feature groups; and how the falls of the parts make a map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PATCH = 1 / 6  # an image part's side, as a share of the input's side
STRIDE = 1 / 12  # the step between image parts: each map cell is hidden by 2 x 2 of them


@dataclass(frozen=True)
class Parts:
    """Parts of one model input, hidden one at a time: masks (K, H, W), 1 where part k hides the
    input's row and column; cover (K, h, w), the share of each map cell that part k hides."""

    masks: np.ndarray
    cover: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """The map's (h, w)."""
        return self.cover.shape[1:]

    def __len__(self) -> int:
        return len(self.masks)

    def to_maps(self, falls: np.ndarray) -> np.ndarray:
        """Each target's falls (M, K) -> its map (M, h, w): per cell, the mean fall of the parts that
        hide it, weighted by how much of it they hide (0 where none does)."""
        weights = self.cover.sum(axis=0)
        total = np.einsum("mk,khw->mhw", falls, self.cover)
        return (total / np.where(weights > 0, weights, 1.0)).astype(np.float32)


def _starts(size: int, part: int, count: int) -> list[int]:
    """`count` starts of a part of `part` cells evenly spread over `size`, the last flush with the end."""
    return sorted({round(s) for s in np.linspace(0, size - part, count)})


def patches(height: int, width: int, side: float = PATCH, step: float = STRIDE) -> Parts:
    """An image's parts: windows of `side` of its height and width, at `step` of them (the last flush with
    the edge); the map's cells are the steps, 1/step a side (12 x 12 by default)."""
    cells = round(1 / step)
    counts = round((1 - side) / step) + 1
    rows, columns = max(1, round(height * side)), max(1, round(width * side))
    masks = []
    for y in _starts(height, rows, counts):
        for x in _starts(width, columns, counts):
            mask = np.zeros((height, width), np.float32)
            mask[y : y + rows, x : x + columns] = 1
            masks.append(mask)
    masks = np.stack(masks)
    cover = np.stack([cv2.resize(m, (cells, cells), interpolation=cv2.INTER_AREA) for m in masks])
    return Parts(masks, cover)


def groups(index: np.ndarray) -> Parts:
    """A flat vector's parts: one per group of features (index: each feature's group, -1: none), the map
    over the features themselves (values x 1)."""
    masks = np.stack([(index == g).astype(np.float32) for g in range(int(index.max()) + 1)])[:, :, None]
    return Parts(masks, masks)


def features(blocks: Sequence[tuple[int, int]], shape: tuple[int, int], kinds: Sequence[str | None]) -> Parts:
    """Windows of DSP features' parts: in each block (frames x columns, side by side in the flat vector
    that the model sees as `shape`), windows of PATCH of its frames at STRIDE, each across a third of
    its columns where they are frequencies, across all of them where they are cepstra (MFCC: kind
    `mfcc`); the map over the model's input itself."""
    masks, offset = [], 0
    for (frames, columns), kind in zip(blocks, kinds, strict=True):
        side = max(1, round(frames * PATCH))
        bands = (
            [(0, columns)]
            if kind == "mfcc" or columns < 3
            else [(columns * i // 3, columns * (i + 1) // 3) for i in range(3)]
        )
        for start in _starts(frames, side, round((1 - PATCH) / STRIDE) + 1):
            for low, high in bands:
                flat = np.zeros(shape[0] * shape[1], np.float32)
                block = flat[offset : offset + frames * columns].reshape(frames, columns)
                block[start : start + side, low:high] = 1
                masks.append(flat.reshape(shape))
        offset += frames * columns
    masks = np.stack(masks)
    return Parts(masks, masks)


def parts_for(
    shape: tuple[int, int, int], windows: bool, blocks: Sequence[tuple[int, int]] | None, dsp: str | None
) -> Parts:
    """The parts of a model input of `shape` (height, width, channels): an image's patches; or for
    windows of DSP features, their blocks' (blocks: each one's frames x columns, None: one block
    whose frames are the input's rows; dsp: their types, "+" between several, where known)."""
    height, width, _channels = shape
    if not windows:
        return patches(height, width)
    blocks = blocks or [(height, width)]
    kinds = dsp.split("+") if dsp and len(dsp.split("+")) == len(blocks) else [None] * len(blocks)
    return features(blocks, (height, width), kinds)
