"""The image block's resize, as Studio makes it: libvips's kernels (Studio's sharp runs libvips; pyvips
with pyvips-binary bundles the same library), `lanczos3` by default or `nearest` (the impulse's
`resizeMethod`), and where a crop sits (its `cropAnchor`, nine anchors)."""

from __future__ import annotations

import numpy as np
import pyvips

from gradcam.errors import GradcamError

pyvips.cache_set_max(0)  # every image is new: a cache of operations would only hold their pixels
pyvips.concurrency_set(1)  # the job's own threads share the cores, one image each


def resize(image: np.ndarray, width: int, height: int, method: str = "lanczos3") -> np.ndarray:
    """A uint8 (H, W, C) image resized to (width, height) with libvips's `method` kernel (vips_resize:
    a box shrink by the integer part of a large reduction, then the kernel), as uint8."""
    h0, w0, bands = image.shape
    if (w0, h0) == (width, height):
        return image
    source = pyvips.Image.new_from_memory(np.ascontiguousarray(image).data, w0, h0, bands, "uchar")
    out = source.resize(width / w0, vscale=height / h0, kernel=method)
    pixels = np.ndarray((out.height, out.width, bands), np.uint8, out.write_to_memory())
    if pixels.shape[:2] != (height, width):  # libvips rounds the output size; never seen off
        raise GradcamError(f"resizing {w0}x{h0} to {width}x{height} gave {out.width}x{out.height}")
    return pixels


def anchored(free: int, anchor_part: str) -> int:
    """Where a crop starts along an axis with `free` pixels to leave out: at the start (left, top), the
    middle, or the end (right, bottom)."""
    return {"left": 0, "top": 0, "center": free // 2, "middle": free // 2}.get(anchor_part, free)


def crop_start(free_x: int, free_y: int, anchor: str) -> tuple[int, int]:
    """(x0, y0) of a crop leaving out free_x columns and free_y rows, at `anchor` (e.g. top-left)."""
    vertical, horizontal = anchor.split("-")
    return anchored(free_x, horizontal), anchored(free_y, vertical)
