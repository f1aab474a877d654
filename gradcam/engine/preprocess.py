"""Edge Impulse's image block: resize mode, colour depth and input scaling, and the way back.

An image goes through the same steps as in Studio: resized to the impulse's width and height
(`squash`, `fit-short` = a crop to the target aspect at the crop anchor, `fit-long` = letterbox with
black) with the impulse's kernel (gradcam.engine.resize: libvips's lanczos3 or nearest),
converted to RGB or grayscale (0.299 R + 0.587 G + 0.114 B), divided by 255, then scaled as the
model's `imageInputScaling` says. `Geometry` records where the model's input sits in the
original image, so a heatmap can be put back on the original at its own resolution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gradcam.choices import CROP_ANCHORS, INPUT_SCALINGS, RESIZE_METHODS, RESIZE_MODES
from gradcam.engine import resize
from gradcam.errors import GradcamError, check_choice

_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@dataclass(frozen=True)
class ImageSpec:
    """What the model expects: its input size, colour depth, how to resize and how to scale."""

    width: int
    height: int
    grayscale: bool = False
    resize_mode: str = "squash"
    input_scaling: str = "0..1"
    resize_method: str = "lanczos3"
    crop_anchor: str = "middle-center"

    def __post_init__(self) -> None:
        check_choice("resize mode", self.resize_mode, RESIZE_MODES)
        check_choice("input scaling", self.input_scaling, INPUT_SCALINGS)
        check_choice("resize method", self.resize_method, RESIZE_METHODS)
        check_choice("crop anchor", self.crop_anchor, CROP_ANCHORS)

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3


@dataclass(frozen=True)
class Geometry:
    """Where the model input lies in the original image.

    In continuous pixel-edge coordinates, original = model * scale + offset, per axis; `valid`
    is the rectangle (x0, y0, x1, y1) of the original image that the model saw.
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    valid: tuple[int, int, int, int]

    def resized(self, width_ratio: float, height_ratio: float) -> Geometry:
        """The same geometry on the image resized by these ratios (new size / old size)."""
        x0, y0, x1, y1 = self.valid
        return Geometry(
            self.scale_x * width_ratio,
            self.scale_y * height_ratio,
            self.offset_x * width_ratio,
            self.offset_y * height_ratio,
            (round(x0 * width_ratio), round(y0 * height_ratio), round(x1 * width_ratio), round(y1 * height_ratio)),
        )

    def from_model(self, point: tuple[float, float]) -> tuple[float, float]:
        """A point of the model input (pixel edges at 0 .. width) -> the same point in the image."""
        return point[0] * self.scale_x + self.offset_x, point[1] * self.scale_y + self.offset_y

    def to_model(self, point: tuple[float, float]) -> tuple[float, float]:
        """A point of the image -> the same point of the model input (may lie outside it)."""
        return (point[0] - self.offset_x) / self.scale_x, (point[1] - self.offset_y) / self.scale_y

    def _cell_size(self, map_shape: tuple[int, ...], model_size: tuple[int, int]) -> tuple[float, float]:
        """(width, height) of one heatmap cell in original pixels."""
        return model_size[0] / map_shape[1] * self.scale_x, model_size[1] / map_shape[0] * self.scale_y

    def point_to_original(
        self, point: tuple[float, float], map_shape: tuple[int, int], model_size: tuple[int, int]
    ) -> tuple[int, int]:
        """A point in heatmap cells (x, y; cell centres at 0, 1, ...) -> the original pixel under it.
        `map_shape` is the heatmap's (height, width), `model_size` the model input's (width, height)."""
        kx, ky = self._cell_size(map_shape, model_size)
        x, y = (point[0] + 0.5) * kx + self.offset_x, (point[1] + 0.5) * ky + self.offset_y
        x0, y0, x1, y1 = self.valid
        return min(max(int(x), x0), x1 - 1), min(max(int(y), y0), y1 - 1)

    def to_original(self, heatmap: np.ndarray, size: tuple[int, int], model_size: tuple[int, int]) -> np.ndarray:
        """Map a low-resolution heatmap over the model input onto the original image, bilinearly
        (the edge cells held beyond the map's centres).

        `size` and `model_size` are (width, height). Outside the part of the image the model
        saw (the sides cut off by fit-short), the heatmap is zero.
        """
        kx, ky = self._cell_size(heatmap.shape, model_size)
        # original pixel centre i + 0.5 = (j + 0.5) * k + offset, solved for heatmap index j; one
        # matrix product per axis (exact, where warpAffine rounds positions to 1/32 of a cell, and
        # eight times faster on a 288x288 picture).
        rows = _bilinear(size[1], heatmap.shape[0], 1 / ky, (0.5 - self.offset_y) / ky - 0.5)
        columns = _bilinear(size[0], heatmap.shape[1], 1 / kx, (0.5 - self.offset_x) / kx - 0.5)
        full = rows @ heatmap.astype(np.float32) @ columns.T
        x0, y0, x1, y1 = self.valid
        if (x0, y0, x1, y1) != (0, 0, size[0], size[1]):
            mask = np.zeros_like(full)
            mask[y0:y1, x0:x1] = 1
            full *= mask
        return full


@functools.lru_cache(maxsize=64)
def _bilinear(count: int, cells: int, step: float, start: float) -> np.ndarray:
    """(count, cells) weights: pixel i takes the map linearly at position i * step + start, held
    at the first and last cell beyond them."""
    position = np.clip(np.arange(count) * step + start, 0, cells - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, cells - 1)
    weights = np.zeros((count, cells), np.float32)
    np.add.at(weights, (np.arange(count), low), (1 - (position - low)).astype(np.float32))
    np.add.at(weights, (np.arange(count), high), (position - low).astype(np.float32))
    weights.flags.writeable = False
    return weights


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An RGB uint8 (H, W, 3) view of `image`: grayscale (H, W) or (H, W, 1) is repeated over the
    three channels; RGBA (H, W, 4) loses its alpha channel, as OpenCV decodes an RGBA PNG file."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape:
        raise GradcamError(
            f"{name}: expected a uint8 array of shape (H, W, 3) RGB, (H, W) grayscale or (H, W, 4) RGBA; "
            f"got {image.dtype} {tuple(image.shape)}"
        )
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def fit(image: np.ndarray, spec: ImageSpec) -> tuple[np.ndarray, Geometry]:
    """Resize an RGB uint8 image to the model's size as Edge Impulse's resize mode does."""
    h0, w0 = image.shape[:2]
    w, h = spec.width, spec.height
    method = spec.resize_method
    if spec.resize_mode == "squash":
        return resize.resize(image, w, h, method), Geometry(w0 / w, h0 / h, 0.0, 0.0, (0, 0, w0, h0))
    if spec.resize_mode in ("fit-short", "crop"):
        scale = max(w / w0, h / h0)
        cw, ch = min(w0, round(w / scale)), min(h0, round(h / scale))
        x0, y0 = resize.crop_start(w0 - cw, h0 - ch, spec.crop_anchor)
        resized = resize.resize(image[y0 : y0 + ch, x0 : x0 + cw], w, h, method)
        return resized, Geometry(cw / w, ch / h, float(x0), float(y0), (x0, y0, x0 + cw, y0 + ch))
    # fit-long: the whole image, letterboxed with black.
    scale = min(w / w0, h / h0)
    nw, nh = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    px, py = (w - nw) // 2, (h - nh) // 2
    canvas = np.zeros((h, w, image.shape[2]), dtype=image.dtype)
    canvas[py : py + nh, px : px + nw] = resize.resize(image, nw, nh, method)
    sx, sy = w0 / nw, h0 / nh
    return canvas, Geometry(sx, sy, -px * sx, -py * sy, (0, 0, w0, h0))


def to_color_depth(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """RGB uint8 -> float32 0..255 with the model's channels (grayscale keeps a channel axis)."""
    pixels = image.astype(np.float32)
    if spec.grayscale:
        return (pixels @ _GRAY_WEIGHTS)[..., None]
    return pixels


def scale(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """float32 0..255 (any leading shape, channels last) -> the model's input range."""
    x = pixels / 255.0
    mode = spec.input_scaling
    if mode == "0..1":
        return x
    if mode == "-1..1":
        return x * 2.0 - 1.0
    if mode == "-128..127":
        return x * 255.0 - 128.0
    if mode == "0..255":
        return x * 255.0
    mean, std = _IMAGENET_MEAN, _IMAGENET_STD
    if spec.grayscale:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    if mode == "torch":
        return (x - mean) / std
    # bgr-subtract-imagenet-mean: Caffe style, BGR order, 0..255 minus the ImageNet mean.
    bgr_mean = _CAFFE_BGR_MEAN.mean(keepdims=True) if spec.grayscale else _CAFFE_BGR_MEAN
    return x[..., ::-1] * 255.0 - bgr_mean


def preprocess(image: np.ndarray, spec: ImageSpec) -> tuple[np.ndarray, Geometry]:
    """RGB uint8 image of any size -> (model input H x W x C float32, its geometry)."""
    resized, geometry = fit(image, spec)
    return scale(to_color_depth(resized, spec), spec).astype(np.float32), geometry


def display_image(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """The original image as the model saw its colours: grayscale models get a gray RGB image."""
    if not spec.grayscale:
        return image
    gray = np.clip(np.rint(to_color_depth(image, spec)), 0, 255).astype(np.uint8)
    return np.repeat(gray, 3, axis=2)
