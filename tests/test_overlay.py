"""Overlays: JET colours, a float blend that is clipped, panels."""

import cv2
import numpy as np

from gradcam.engine.overlay import CAPTION_HEIGHT, blend, colorize, panel


def test_colorize_runs_from_blue_to_red():
    colours = colorize(np.array([[0.0, 1.0]]))
    assert tuple(colours[0, 0]) == (0, 0, 128)  # JET's dark blue, in RGB
    assert tuple(colours[0, 1]) == (128, 0, 0)  # JET's dark red


def test_colorize_gives_opencv_s_jet_colours_at_every_level():
    """The lookup table against OpenCV's own colouring, on every level and on a smooth map."""
    heatmap = cv2.resize(np.random.default_rng(0).random((6, 6)).astype(np.float32), (97, 61))
    for values in (np.linspace(0, 1, 256, dtype=np.float32)[None], heatmap, heatmap[5:40, 3:90]):
        levels = np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
        expected = cv2.applyColorMap(levels, cv2.COLORMAP_JET)[..., ::-1]
        np.testing.assert_array_equal(colorize(values), expected)
    assert colorize(np.array([[-0.2, 1.3]], np.float32)).tolist() == [[[0, 0, 128], [128, 0, 0]]]  # clipped


def test_blend_is_a_weighted_mix_in_float():
    image = np.full((2, 2, 3), 200, np.uint8)
    heatmap = np.ones((2, 2), np.float32)
    out = blend(image, heatmap, alpha=0.25)
    np.testing.assert_array_equal(out[0, 0], np.rint(0.75 * 200 + 0.25 * np.array([128, 0, 0])))


def test_blend_never_wraps_around():
    image = np.full((1, 1, 3), 255, np.uint8)
    heatmap = np.ones((1, 1), np.float32)
    # Out-of-range alphas push the mix below 0 and above 255: clipped, not wrapped around.
    np.testing.assert_array_equal(blend(image, heatmap, alpha=1.5)[0, 0], [64, 0, 0])
    np.testing.assert_array_equal(blend(image, heatmap, alpha=-0.5)[0, 0], [255, 255, 255])


def test_panel_shows_original_heatmap_and_blend_with_a_caption():
    image = np.full((10, 12, 3), 90, np.uint8)
    out = panel(image, np.zeros((10, 12), np.float32), 0.4, "true: a  predicted: b")
    assert out.shape == (10 + 2 * CAPTION_HEIGHT, 36, 3), "36 pixels hold one field a line: the caption wraps"
    np.testing.assert_array_equal(out[:10, :12], image)
    assert (out[10:] < 255).any(), "the caption is drawn"


def test_only_the_region_the_model_saw_is_tinted():
    image = np.full((4, 10, 3), 100, np.uint8)
    out = blend(image, np.ones((4, 10), np.float32), 0.5, region=(3, 0, 7, 4))
    np.testing.assert_array_equal(out[:, :3], image[:, :3])
    np.testing.assert_array_equal(out[:, 7:], image[:, 7:])
    assert (out[:, 3:7] != 100).any()
