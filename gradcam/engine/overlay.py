"""Heatmap colouring and blending: JET colours mixed with the image in float, then clipped."""

from __future__ import annotations

import cv2
import numpy as np

CAPTION_HEIGHT = 28  # one line of a caption strip
FONT_SCALE = 0.45
MARGIN = 6  # pixels left of a caption's text, and kept free right of it
# OpenCV's JET colours as an RGB lookup table, built once: applyColorMap(levels, COLORMAP_JET)
# rebuilds its table on every call (6 ms for a 288x288 picture, against 0.1 ms through this table).
_JET = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, :, ::-1].copy()


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """0..1 heatmap (H, W) -> RGB uint8 JET colours (blue = 0, red = 1)."""
    levels = np.clip(np.rint(heatmap * 255.0), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, _JET)


Region = tuple[int, int, int, int]  # (x0, y0, x1, y1): the part of the image the model saw


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, region: Region | None = None) -> np.ndarray:
    """(1 - alpha) * image + alpha * colours, rounded and clipped to 0..255, inside `region` only
    (the sides a fit-short crop cut off were not seen by the model: they stay as they are).

    The original block added alpha * colours to the full image (and did not clip), which washes
    bright or colourful images out to white; a weighted mix keeps both readable.
    """
    x0, y0, x1, y1 = region or (0, 0, image.shape[1], image.shape[0])
    out = image.copy()
    seen = (slice(y0, y1), slice(x0, x1))
    # addWeighted mixes in floating point and rounds with saturation: no wrap-around.
    out[seen] = cv2.addWeighted(np.ascontiguousarray(image[seen]), 1.0 - alpha, colorize(heatmap[seen]), alpha, 0.0)
    return out


def text_width(text: str, scale: float = FONT_SCALE) -> int:
    """How many pixels `text` takes, written at this font scale."""
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]


def write(picture: np.ndarray, text: str, x: int, baseline: int, width: int) -> None:
    """Write `text` in black from (x, baseline), its font shrunk if it is wider than `width` pixels."""
    scale = min(FONT_SCALE, FONT_SCALE * width / max(text_width(text), 1))
    cv2.putText(picture, text, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _write(strip: np.ndarray, x: int, line: int, text: str, width: int) -> None:
    """Write `text` from x on the given line of the strip, its font shrunk if it is wider than `width`."""
    write(strip, text, x + MARGIN, (line + 1) * CAPTION_HEIGHT - 9, width - 2 * MARGIN)


def _strip(width: int, texts: list[tuple[int, str]], space: int) -> np.ndarray:
    """A white strip `width` pixels wide, each text written from its x within `space` pixels."""
    strip = np.full((CAPTION_HEIGHT, width, 3), 255, dtype=np.uint8)
    for x, text in texts:
        _write(strip, x, 0, text, space)
    return strip


def caption_lines(caption: str, width: int) -> list[str]:
    """The caption's fields (separated by two spaces) packed into lines that fit `width` pixels."""
    lines: list[str] = []
    for field in caption.split("  "):
        joined = f"{lines[-1]}  {field}" if lines else field
        if lines and text_width(joined) <= width - 2 * MARGIN:
            lines[-1] = joined
        else:
            lines.append(field)
    return lines


def caption_strip(width: int, caption: str) -> np.ndarray:
    """A white caption strip `width` pixels wide, the caption wrapped onto as many lines as it needs."""
    lines = caption_lines(caption, width)
    strip = np.full((CAPTION_HEIGHT * len(lines), width, 3), 255, dtype=np.uint8)
    for i, line in enumerate(lines):
        _write(strip, 0, i, line, width)
    return strip


def panel(
    image: np.ndarray, heatmap: np.ndarray, alpha: float, caption: str, region: Region | None = None
) -> np.ndarray:
    """Original, heatmap and blend side by side, over a caption strip."""
    row = np.concatenate([image, colorize(heatmap), blend(image, heatmap, alpha, region)], axis=1)
    return np.concatenate([row, caption_strip(row.shape[1], caption)], axis=0)


def contrast_panel(
    image: np.ndarray, maps: list[tuple[np.ndarray, str]], alpha: float, caption: str, region: Region | None = None
) -> np.ndarray:
    """Original and one blend per (heatmap, title) side by side, over the titles and a caption strip."""
    row = np.concatenate([image, *(blend(image, heatmap, alpha, region) for heatmap, _ in maps)], axis=1)
    width = image.shape[1]
    titles = _strip(row.shape[1], [(width * (i + 1), title) for i, (_, title) in enumerate(maps)], width)
    return np.concatenate([row, titles, caption_strip(row.shape[1], caption)], axis=0)


FOUND, MISSED, UNJUDGED = (40, 200, 60), (230, 40, 40), (250, 210, 40)  # RGB


def draw_objects(
    picture: np.ndarray,
    boxes: list[tuple[tuple[int, int, int, int], bool]],
    marks: list[tuple[tuple[float, float], str, bool | None]],
    left: int = 0,
) -> np.ndarray:
    """Object detection on an overlay that starts `left` pixels from the picture's left edge:
    ground-truth boxes ((x0, y0, x1, y1), found?) as rectangles, green when found, red when
    missed; detections ((x, y) centroid, text, matched?) as a dot with its text, green when it
    matched a box, red when it did not, yellow when the image has no boxes to judge it by."""
    out = picture.copy()
    for (x0, y0, x1, y1), found in boxes:
        cv2.rectangle(out, (left + x0, y0), (left + x1 - 1, y1 - 1), FOUND if found else MISSED, 1, cv2.LINE_AA)
    for (x, y), text, matched in marks:
        colour = UNJUDGED if matched is None else FOUND if matched else MISSED
        centre = (left + round(x), round(y))
        cv2.circle(out, centre, 4, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, centre, 3, colour, -1, cv2.LINE_AA)
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        x = centre[0] + 6 if centre[0] + 6 + width <= out.shape[1] else max(left, centre[0] - 6 - width)
        cv2.putText(out, text, (x, centre[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return out
