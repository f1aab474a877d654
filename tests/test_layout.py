"""The way back from a map to each DSP block's features (gradcam.edge.layout), and the faithfulness
background in the blocks' own layout, checked against references written from the definitions."""

import numpy as np
import pytest
import tensorflow as tf

from gradcam.edge.layout import FeatureLayout, FeaturePeak
from gradcam.engine.faithfulness import background
from gradcam.errors import GradcamError

# Two blocks as a real multi-block model takes them: 3 frames x 4 columns, then 2 frames x 5, in rows
# of 11 (22 values): the first row holds all of block A's first two frames and 3 values of its third.
SHAPES = [("A", (3, 4), None), ("B", (2, 5), [100.0, 200.0, 300.0, 400.0, 500.0])]
LAYOUT = FeatureLayout.of(SHAPES, (2, 11))


def test_the_blocks_are_cut_from_the_flat_vector_frame_by_frame():
    values = np.arange(22.0)
    a, b = LAYOUT.split(values.reshape(2, 11))
    np.testing.assert_array_equal(a, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    np.testing.assert_array_equal(b, [[12, 13, 14, 15, 16], [17, 18, 19, 20, 21]])
    assert [(block.offset, block.size) for block in LAYOUT.blocks] == [(0, 12), (12, 10)]


def test_a_map_along_rows_lights_every_feature_of_its_row_in_whichever_block_it_falls():
    """A 1-D map over the two rows: row 1 (values 11..21) hot, row 0 cold. Value 11 is block A's
    last frame's last column; the rest is block B."""
    heat_a, heat_b = LAYOUT.heat(np.array([[0.0], [1.0]]))
    expected_a = np.zeros((3, 4))
    expected_a[2, 3] = 1.0
    np.testing.assert_allclose(heat_a, expected_a)
    np.testing.assert_allclose(heat_b, np.ones((2, 5)))
    # Ties go to the first in the vector's order: block A's frame 2, where the heat varies across
    # the columns: the hottest column is 3.
    assert LAYOUT.peak([heat_a, heat_b]) == FeaturePeak(0, 2, 3)


def test_a_frame_whose_heat_is_flat_across_its_columns_has_no_peak_column():
    layout = FeatureLayout.of([("A", (4, 3), None)], (4, 3))
    heats = layout.heat(np.array([[0.1], [0.2], [0.9], [0.3]]))
    assert layout.peak(heats) == FeaturePeak(0, 2, None)
    assert layout.peak(layout.heat(np.zeros((4, 1)))) is None, "a blank map has no peak"


def test_blocks_that_do_not_fill_the_models_input_are_refused_naming_them():
    message = r"^the DSP blocks' features \(A 3x4 \+ B 2x5 = 22 values\) do not fill the model's input \(4 x 7 = 28"
    with pytest.raises(GradcamError, match=message):
        FeatureLayout.of(SHAPES, (4, 7))


def test_the_background_is_each_blocks_column_median_over_its_own_frames():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 2, 11, 1)).astype(np.float32)
    got = background(tf.constant(x), [(3, 4), (2, 5)]).numpy().reshape(4, 22)
    flat = x.reshape(4, 22)
    a = np.median(flat[:, :12].reshape(4, 3, 4), axis=1, keepdims=True)
    b = np.median(flat[:, 12:].reshape(4, 2, 5), axis=1, keepdims=True)
    expected = np.concatenate(
        [np.broadcast_to(a, (4, 3, 4)).reshape(4, 12), np.broadcast_to(b, (4, 2, 5)).reshape(4, 10)], 1
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # One block whose frames are the rows: the same as no layout.
    np.testing.assert_allclose(background(tf.constant(x), [(2, 11)]).numpy(), background(tf.constant(x)).numpy())
