"""Edge Impulse's image block, checked against independent arithmetic, and the way back."""

import cv2
import numpy as np
import pytest

from gradcam.engine.preprocess import ImageSpec, display_image, fit, preprocess, scale
from gradcam.errors import GradcamError
from tests.helpers import independent_resize


def test_fit_short_crops_the_centre_to_the_target_aspect():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255  # the centre square is white, the sides black
    resized, geometry = fit(image, ImageSpec(10, 10, resize_mode="fit-short"))
    assert (resized == 255).all()
    assert geometry.valid == (50, 0, 150, 100)


def test_fit_long_letterboxes_with_black():
    image = np.full((100, 200, 3), 200, np.uint8)
    resized, geometry = fit(image, ImageSpec(20, 20, resize_mode="fit-long"))
    assert (resized[:5] == 0).all() and (resized[15:] == 0).all()
    assert (resized[5:15] == 200).all()
    assert geometry.valid == (0, 0, 200, 100)


def test_squash_uses_the_whole_image():
    image = np.arange(40 * 80 * 3, dtype=np.uint8).reshape(40, 80, 3)
    resized, _ = fit(image, ImageSpec(8, 8))
    assert resized.shape == (8, 8, 3)


def test_grayscale_uses_the_luma_weights_then_divides_by_255():
    image = np.array([[[10, 200, 30]]], np.uint8)
    x, _ = preprocess(image, ImageSpec(1, 1, grayscale=True))
    assert x.shape == (1, 1, 1)
    assert x[0, 0, 0] == pytest.approx((0.299 * 10 + 0.587 * 200 + 0.114 * 30) / 255, abs=1e-6)


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("0..1", [51 / 255, 102 / 255, 204 / 255]),
        ("-1..1", [51 / 127.5 - 1, 102 / 127.5 - 1, 204 / 127.5 - 1]),
        ("-128..127", [51 - 128, 102 - 128, 204 - 128]),
        ("0..255", [51, 102, 204]),
        ("torch", [(0.2 - 0.485) / 0.229, (0.4 - 0.456) / 0.224, (0.8 - 0.406) / 0.225]),
        ("bgr-subtract-imagenet-mean", [204 - 103.939, 102 - 116.779, 51 - 123.68]),
    ],
)
def test_input_scaling(mode, expected):
    pixels = np.array([[[51, 102, 204]]], np.float32)
    np.testing.assert_allclose(scale(pixels, ImageSpec(1, 1, input_scaling=mode))[0, 0], expected, rtol=1e-5)


@pytest.mark.parametrize("size", [(100, 60), (50, 30)])
def test_the_default_resize_is_lanczos3_as_studio_s(size):
    noise = (np.random.default_rng(0).random((90, 150, 3)) * 255).astype(np.uint8)
    image = cv2.GaussianBlur(noise, (0, 0), 2)
    resized, _ = fit(image, ImageSpec(*size))
    expected = independent_resize(image, *size)
    assert np.abs(resized.astype(int) - expected).max() <= 1, "within a level of Lanczos-3"
    area = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    assert np.abs(resized.astype(int) - area).max() > 1, "not the block's old OpenCV resize"


def test_nearest_takes_the_source_pixels():
    image = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    resized, _ = fit(image, ImageSpec(4, 4, resize_method="nearest"))
    assert np.array_equal(resized, independent_resize(image, 4, 4, "nearest")), "the pixel under each centre"


@pytest.mark.parametrize(
    ("anchor", "valid"),
    [("top-left", (0, 0, 100, 100)), ("middle-center", (50, 0, 150, 100)), ("bottom-right", (100, 0, 200, 100))],
)
def test_fit_short_crops_at_the_anchor(anchor, valid):
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :, 0] = np.arange(200)[None] // 1  # each column its own red
    resized, geometry = fit(image, ImageSpec(10, 10, resize_mode="fit-short", crop_anchor=anchor))
    assert geometry.valid == valid
    assert abs(int(resized[5, 5, 0]) - (valid[0] + valid[2]) // 2) <= 6, "the crop's middle column in the middle"
    tall = fit(image.transpose(1, 0, 2), ImageSpec(10, 10, resize_mode="fit-short", crop_anchor=anchor))[1]
    assert tall.valid == (0, valid[0], 100, valid[2]), "top, middle, bottom along a tall image"


def test_unknown_options_are_errors():
    with pytest.raises(GradcamError, match="resize mode 'stretch': expected one of squash, fit-short"):
        ImageSpec(1, 1, resize_mode="stretch")
    with pytest.raises(GradcamError, match="resize method 'bicubic': expected one of lanczos3, nearest"):
        ImageSpec(1, 1, resize_method="bicubic")
    with pytest.raises(GradcamError, match="crop anchor 'centre': expected one of top-left, top-center"):
        ImageSpec(1, 1, crop_anchor="centre")
    with pytest.raises(GradcamError, match="input scaling '0..2'"):
        ImageSpec(1, 1, input_scaling="0..2")


@pytest.mark.parametrize("mode", ["squash", "fit-short", "fit-long"])
def test_heatmap_peak_maps_back_to_the_same_spot_in_the_original(mode):
    """A bright spot at a known original position -> peak of the model input -> back to the original."""
    h0, w0 = 120, 200
    spot = (130, 40)  # (x, y) in the original, inside the fit-short crop (x 40..160)
    image = np.zeros((h0, w0, 3), np.uint8)
    image[spot[1] - 6 : spot[1] + 6, spot[0] - 6 : spot[0] + 6] = 255
    spec = ImageSpec(40, 40, resize_mode=mode)
    resized, geometry = fit(image, spec)
    heatmap = resized[..., 0].astype(np.float32) / 255  # the "CAM" at model resolution
    back = geometry.to_original(heatmap, (w0, h0), (40, 40))
    assert back.shape == (h0, w0)
    ys, xs = np.nonzero(back > 0.5 * back.max())
    assert abs(xs.mean() - spot[0] + 0.5) < 3 and abs(ys.mean() - spot[1] + 0.5) < 3
    # The same spot found on a 10x10 map (4 model pixels a cell) and mapped back as a point.
    cells = cv2.resize(heatmap, (10, 10), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(cells == cells.max())
    x, y = geometry.point_to_original((xs.mean(), ys.mean()), cells.shape, (40, 40))
    cell = max(geometry.scale_x, geometry.scale_y) * 4  # original pixels a cell covers
    assert abs(x - spot[0]) <= cell and abs(y - spot[1]) <= cell


@pytest.mark.parametrize(("mode", "size"), [("squash", (96, 96)), ("squash", (131, 77)), ("fit-short", (200, 120))])
def test_a_map_lies_on_its_image_as_a_bilinear_interpolation_holding_its_edges(mode, size):
    """The map on the image against np.interp, row by row then column by column (the cells' centres
    at (j + 0.5) * k + offset in image pixels, the edge cells held beyond them); and, where the map
    covers the image exactly (squash), against OpenCV's bilinear resize."""
    width, height = size
    _, geometry = fit(np.zeros((height, width, 3), np.uint8), ImageSpec(48, 48, resize_mode=mode))
    cam = np.random.default_rng(0).random((12, 12)).astype(np.float32)
    back = geometry.to_original(cam, size, (48, 48))
    kx, ky = 48 / 12 * geometry.scale_x, 48 / 12 * geometry.scale_y
    centres_x, centres_y = (
        (np.arange(12) + 0.5) * kx + geometry.offset_x,
        (np.arange(12) + 0.5) * ky + geometry.offset_y,
    )
    pixels_x, pixels_y = np.arange(width) + 0.5, np.arange(height) + 0.5
    rows = np.stack([np.interp(pixels_x, centres_x, row) for row in cam])
    expected = np.stack([np.interp(pixels_y, centres_y, column) for column in rows.T], axis=1)
    x0, y0, x1, y1 = geometry.valid
    np.testing.assert_allclose(back[y0:y1, x0:x1], expected[y0:y1, x0:x1], atol=1e-5)
    if mode == "squash":
        np.testing.assert_allclose(back, cv2.resize(cam, size, interpolation=cv2.INTER_LINEAR), atol=1e-5)


def test_fit_short_heatmap_is_zero_outside_the_crop():
    _, geometry = fit(np.zeros((100, 200, 3), np.uint8), ImageSpec(10, 10, resize_mode="fit-short"))
    back = geometry.to_original(np.ones((5, 5), np.float32), (200, 100), (10, 10))
    assert (back[:, :50] == 0).all() and (back[:, 150:] == 0).all() and (back[:, 50:150] == 1).all()


def test_grayscale_display_is_tiled_gray():
    image = np.array([[[10, 200, 30]]], np.uint8)
    shown = display_image(image, ImageSpec(1, 1, grayscale=True))
    assert shown.shape == (1, 1, 3) and len(set(shown[0, 0])) == 1
