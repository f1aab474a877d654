"""Where each class looks, summed over the run, and the shortcuts found in it: pure NumPy, fed each
sample's map and image once, in the model's input frame (at most SIDE pixels on its long side).

Per explained class (and, for mistakes, per true class with the map of that class): the number of
images, the sum of their maps and of their images. Per explained class also the sum of the squared
images (each pixel's spread across the class's images), and for each candidate region (a square of
REGION_SHARE of the frame's long side, every half side) how many images have their hottest region there.

A shortcut: a class whose maps keep landing on the same region while the pixels there hardly change
from image to image, as a logo, a timestamp or a jig does, and an object that moves or varies does
not. Flagged when
- share: at least SHARE of the class's images have their hottest region on or next to the region
  (overlapping it by half or more), and
- stillness: the pixels' spread across the class's images there is at most STILLNESS of their spread
  over the whole frame;
with at least MIN_IMAGES images. The thresholds are measured (tests/test_looks.py, docs/shortcuts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIDE = 96  # the summaries' frame: the model's input, at most this many pixels on its long side
REGION_SHARE = 1 / 8  # a candidate region's side, as a share of the frame's long side
MIN_IMAGES = 10
SHARE = 0.6
STILLNESS = 0.35
# A class whose maps put less than this many times the boxes' share of the frame inside the boxes (a
# map spread evenly puts 1x there) looks outside its objects.
OUTSIDE_LIFT = 1.5


@dataclass(frozen=True)
class View:
    """One sample in the summaries' frame: the class its map explains, the map (0..1), the image
    (uint8 RGB), and for a mistake the true class and its map; boxes: the objects' (x0, y0, x1, y1)
    in the frame, when the sample lists them. Its hottest region and the heat inside its boxes are
    measured when it is made (in the job's render threads), so that summing it is cheap."""

    explained: str
    heat: np.ndarray
    image: np.ndarray
    truth: str | None = None
    truth_heat: np.ndarray | None = None
    boxes: tuple[tuple[float, float, float, float], ...] | None = None
    seen: np.ndarray | None = None  # bool: the frame's pixels the image covers (fit-long pads the rest); None: all
    hottest: tuple[int, int] | None = field(init=False)  # (x, y) of its hottest region; None: blank
    inside: tuple[float, float] | None = field(init=False)  # heat_inside its boxes; None: no boxes, or blank

    def __post_init__(self) -> None:
        object.__setattr__(self, "hottest", hottest_region(self.heat, region_size(self.heat.shape)))
        object.__setattr__(self, "inside", heat_inside(self.heat, self.boxes) if self.boxes else None)


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    size: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.size, self.y + self.size


@dataclass(frozen=True)
class Shortcut:
    """A region the class's maps keep landing on, whose pixels hardly change."""

    region: Region  # in the summaries' frame
    share: float  # of the class's images whose hottest region is there
    stillness: float  # the pixels' spread there / over the whole frame


@dataclass(frozen=True)
class ClassLook:
    """Where one class's maps look, on average, and what flags it."""

    name: str
    images: int
    heat: np.ndarray  # the mean map
    image: np.ndarray  # the mean image, uint8
    candidate: Shortcut | None = None  # the region its maps land on most, flagged or not
    flagged: bool = False
    heat_in_boxes: float | None = None  # the mean share of each map's heat inside its image's boxes
    box_area: float | None = None  # the mean share of the frame the boxes cover
    boxed: int = 0  # images with boxes


@dataclass(frozen=True)
class Looks:
    """The run's summaries: per explained class, per true class of the mistakes; the frame's size."""

    frame: tuple[int, int]  # (height, width)
    classes: list[ClassLook]
    mistakes: list[ClassLook]
    input_size: tuple[int, int]  # (width, height) of the model's input, which the frame scales
    windows: bool = False  # windows of features: the frame scales their picture (time across)

    def in_input(self, region: Region) -> tuple[int, int, int, int]:
        """A region as a box (x, y, width, height) in the model input's pixels."""
        sx, sy = self.input_size[0] / self.frame[1], self.input_size[1] / self.frame[0]
        return round(region.x * sx), round(region.y * sy), round(region.size * sx), round(region.size * sy)

    @property
    def shortcuts(self) -> list[ClassLook]:
        return [look for look in self.classes if look.flagged]

    @property
    def outside(self) -> list[ClassLook]:
        """Classes whose maps put no more heat inside their objects' boxes than OUTSIDE_LIFT times the
        boxes' share of the frame."""
        return [
            look
            for look in self.classes
            if look.boxed >= MIN_IMAGES and look.heat_in_boxes < OUTSIDE_LIFT * look.box_area
        ]


class _Sums:
    """One class's running sums."""

    def __init__(self, frame: tuple[int, int], spread: bool):
        height, width = frame
        self.n = 0
        self.heat = np.zeros(frame, np.float64)
        self.image = np.zeros((height, width, 3), np.uint64)  # exact integer sums of the uint8 pixels
        self.squares = np.zeros((height, width, 3), np.uint64) if spread else None
        self.seen = np.zeros(frame, np.uint32)  # images that cover each pixel
        self.hottest: dict[tuple[int, int], int] = {}
        self.inside = [0, 0.0, 0.0]  # images with boxes, sums of their heat shares and areas inside the boxes

    def add(self, heat: np.ndarray, image: np.ndarray, seen: np.ndarray | None = None) -> None:
        self.n += 1
        self.heat += heat
        self.image += image
        self.seen += True if seen is None else seen
        if self.squares is not None:
            pixels = image.astype(np.uint32)
            pixels *= pixels
            self.squares += pixels

    def mean(self, name: str) -> ClassLook:
        image = np.clip(np.rint(self.image / self.n), 0, 255).astype(np.uint8)
        return ClassLook(name, self.n, (self.heat / self.n).astype(np.float32), image)


def region_size(frame: tuple[int, int]) -> int:
    return max(2, round(max(frame) * REGION_SHARE))


def _box_means(values: np.ndarray, size: int) -> np.ndarray:
    """The mean of every size x size square of a 2-D array, by its top-left corner."""
    table = np.pad(values, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return (table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]) / size**2


def hottest_region(heat: np.ndarray, size: int) -> tuple[int, int] | None:
    """(x, y) of the size x size square, on a grid of half its side, that holds the most heat; None for
    a blank map."""
    if not heat.max() > 0:
        return None
    step = max(1, size // 2)
    means = _box_means(heat, size)[::step, ::step]
    row, column = np.unravel_index(int(np.argmax(means)), means.shape)
    return int(column) * step, int(row) * step


def heat_inside(heat: np.ndarray, boxes: tuple[tuple[float, float, float, float], ...]) -> tuple[float, float] | None:
    """The share of a map's heat inside the union of the boxes (the pixels whose centres are inside),
    and the share of the pixels they cover; None: a blank map."""
    total = float(heat.sum())
    if not total > 0:
        return None
    ys, xs = np.mgrid[0 : heat.shape[0], 0 : heat.shape[1]] + 0.5
    inside = np.zeros(heat.shape, bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return float(heat[inside].sum()) / total, float(inside.mean())


class ClassLooks:
    """The summaries' running sums, fed one View per sample (each let go after)."""

    def __init__(self, frame: tuple[int, int], input_size: tuple[int, int], windows: bool = False):
        """frame: (height, width) of the summaries; input_size: (width, height) of the model input (windows
        of features: of their picture, time across)."""
        self.frame, self.input_size, self.windows = frame, input_size, windows
        self.size = region_size(frame)
        self._classes: dict[str, _Sums] = {}
        self._mistakes: dict[str, _Sums] = {}

    def add(self, view: View) -> None:
        sums = self._classes.setdefault(view.explained, _Sums(self.frame, spread=True))
        sums.add(view.heat, view.image, view.seen)
        if view.hottest is not None:
            sums.hottest[view.hottest] = sums.hottest.get(view.hottest, 0) + 1
        if view.inside is not None:
            sums.inside[0] += 1
            sums.inside[1] += view.inside[0]
            sums.inside[2] += view.inside[1]
        if view.truth is not None and view.truth_heat is not None:
            self._mistakes.setdefault(view.truth, _Sums(self.frame, spread=False)).add(view.truth_heat, view.image)

    def result(self) -> Looks:
        classes = [self._look(name, sums) for name, sums in sorted(self._classes.items())]
        mistakes = [sums.mean(name) for name, sums in sorted(self._mistakes.items())]
        return Looks(self.frame, classes, mistakes, self.input_size, self.windows)

    def _look(self, name: str, sums: _Sums) -> ClassLook:
        look = sums.mean(name)
        candidate = self._candidate(sums)
        flagged = candidate is not None and sums.n >= MIN_IMAGES and candidate.share >= SHARE
        flagged = flagged and candidate.stillness <= STILLNESS
        boxed, heat, area = sums.inside
        inside = (heat / boxed, area / boxed) if boxed else (None, None)
        return ClassLook(look.name, look.images, look.heat, look.image, candidate, flagged, *inside, boxed)

    def _candidate(self, sums: _Sums) -> Shortcut | None:
        """The region most of the class's hottest regions overlap by half or more, with its share and
        the stillness of its pixels."""
        if not sums.hottest:
            return None
        step = max(1, self.size // 2)

        def near(a: tuple[int, int], b: tuple[int, int]) -> bool:
            return abs(a[0] - b[0]) <= step and abs(a[1] - b[1]) <= step

        best = max(sums.hottest, key=lambda r: (sum(n for other, n in sums.hottest.items() if near(r, other)), r))
        share = sum(n for other, n in sums.hottest.items() if near(best, other)) / sums.n
        region, stillness = _still_patch(sums, Region(best[0], best[1], self.size))
        return Shortcut(region, share, stillness)


def _still_patch(sums: _Sums, region: Region) -> tuple[Region, float]:
    """The stillest square of the region's size among the hot ones around the region (within one
    region of it; hot: at least half the mean map's heat of the hottest square there), and its
    stillness: the pixels' spread across the class's images there, over their spread in the whole
    frame. The maps of a coarse layer spread around what they land on, so the region of the
    hottest heat may hold more than the artefact. Only pixels every image covers count: a letterbox's
    padding is the same black in every image, but no artefact of a class."""
    mean = sums.image / sums.n
    spread = np.sqrt(np.maximum(sums.squares / sums.n - mean**2, 0)).mean(axis=2)  # float64 from here
    covered = sums.seen == sums.n
    size = region.size
    x0, y0 = max(0, region.x - size), max(0, region.y - size)
    window = (slice(y0, region.y + 2 * size), slice(x0, region.x + 2 * size))
    heat, still = _box_means(sums.heat[window], size), _box_means(spread[window], size)
    eligible = (heat >= 0.5 * heat.max()) & (_box_means(covered[window].astype(np.float64), size) > 1 - 1e-9)
    if not eligible.any() or not covered.any():
        return region, 1.0
    row, column = np.unravel_index(int(np.argmin(np.where(eligible, still, np.inf))), still.shape)
    everywhere = float(spread[covered].mean())
    stillness = float(still[row, column]) / everywhere if everywhere > 0 else 1.0
    return Region(x0 + int(column), y0 + int(row), size), stillness
