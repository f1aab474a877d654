"""A flat DSP block's feature layout (gradcam.edge.sensors) against the blocks' own code, and the per-class
group weights (gradcam.job.weights)."""

import json
from pathlib import Path

import numpy as np
import pytest

from gradcam.edge.sensors import from_config, read_config, sensor_layout
from gradcam.errors import GradcamError
from gradcam.job.weights import GroupWeights, WeightSums, group_shares
from tests import motion

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real (real Edge Impulse files) is absent")


def test_spectral_features_are_named_as_the_block_names_them():
    """tests/motion.py's labels are the block's own (checked against processing-blocks' spectral_analysis at
    implementation 4: the same labels, values within 3e-7)."""
    layout = sensor_layout("spectral-analysis", motion.AXES, 63, motion.SPECTRAL_OPTIONS, motion.FREQUENCY, 2000, 4)
    _, labels = motion.spectral(motion.windows(1, 0).signals[0])
    assert layout.note is None and list(layout.kind) == labels * 3
    assert [layout.name(i) for i in (0, 26, 62)] == [
        "accX RMS",
        "accY Spectral Power 0.98 - 2.93 Hz",
        labels and "accZ Spectral Power 30.27 - 32.23 Hz",
    ]
    assert layout.axis == tuple(np.repeat([0, 1, 2], 21)) and not layout.timed
    assert len(layout.groups) == 63 and layout.groups[21] == "accY RMS"


def test_spectral_parameters_change_the_features_as_the_block_does():
    # Version 2 has no spectral skewness and kurtosis; a low-pass filter at 8 Hz keeps bins up to 8 Hz.
    low = {"fft_length": 16, "filter_type": "low", "filter_cutoff": 8}
    kinds = sensor_layout("spectral-analysis", ["x"], 5, low, 62.5, 2000, 2).kind
    assert kinds == ("RMS", "Skewness", "Kurtosis", "Spectral Power 1.95 - 5.86 Hz", "Spectral Power 5.86 - 9.77 Hz")
    # Version 4's extra low-frequency features follow every axis's, per axis, at a tenth of the rate.
    options = {"fft_length": "16", "extra_low_freq": "true"}
    layout = sensor_layout("spectral-analysis", ["x", "y"], 2 * 13 * 2, options, 100, 2000, 4)
    assert layout.note is None and layout.name(26) == "x RMS LF" and layout.name(39) == "y RMS LF"
    assert layout.position[26] == 13  # along x's lane, after its 13 main features
    # Version 1: RMS, the peaks' frequency and height, the power between the edges.
    v1 = sensor_layout(
        "spectral-analysis",
        ["x"],
        10,
        {"spectral_peaks_count": 3, "spectral_power_edges": "0.1, 0.5, 1.0, 2.0"},
        100,
        2000,
        1,
    )
    assert v1.kind[:3] == ("RMS", "Peak 1 Freq", "Peak 1 Height") and v1.kind[-1] == "Spectral Power 1 - 2 Hz"


def test_flatten_and_raw_follow_the_blocks_order():
    flat = sensor_layout("flatten", ["x", "y"], 12, {"kurtosis": False})
    assert flat.kind[:6] == ("Average", "Minimum", "Maximum", "RMS", "Stdev", "Skewness") and flat.axis[6] == 1
    raw = sensor_layout("raw", ["x", "y", "z"], 6 * 3, {}, 50, 120)
    assert raw.timed and raw.axis[:4] == (0, 1, 2, 0) and raw.position[:4] == (0, 0, 0, 1)
    assert raw.name(4) == "y at 20 ms" and raw.groups == ("x", "y", "z")


def test_what_cannot_be_named_is_grouped_by_axis_and_said():
    wavelet = sensor_layout("spectral-analysis", ["x", "y"], 40, {"analysis_type": "Wavelet"}, 100, 2000, 4)
    assert wavelet.groups == ("x", "y") and wavelet.axis[19:21] == (0, 1)
    assert wavelet.note.startswith("the features of a spectral-analysis block cannot be named: grouped by axis")
    wrong = sensor_layout("flatten", ["x", "y"], 13, {})
    assert wrong.groups == ("features",) and "13 features where its parameters give 2 axes x 7 = 14" in wrong.note
    unknown = sensor_layout("features", None, 5)
    assert unknown.groups == ("features",) and "the axes are not known" in unknown.note


@needs_real
def test_syntiant_features_are_samples_by_time_then_padding():
    """On real rows of the Syntiant IMU block (9 axes, 1,808 features): the layout's last 8 are zero
    in every row, and each axis read along its lane is a smooth signal: its step-to-step change is a
    fraction of the change between neighbours in the vector, which hop from axis to axis."""
    rows = np.load(REAL / "imu-sister-X_testing.npy")
    meta = json.loads((REAL / "imu-metadata.json").read_text())
    layout = from_config(meta, rows.shape[1])
    assert layout.block == "syntiant-imu" and layout.axes[0] == "accX" and layout.frequency == 100
    axis = np.array(layout.axis)
    assert (axis[-8:] == -1).all() and (rows[:, axis == -1] == 0).all() and layout.positions == 200
    lanes = np.stack([rows[:, axis == a] for a in range(9)], axis=1)  # (rows, axes, steps)
    along = np.abs(np.diff(lanes, axis=2)).mean()
    across = np.abs(np.diff(rows[:, :1800], axis=1)).mean()
    assert along < 0.2 * across, (along, across)


def test_a_dsp_config_file_names_the_features(tmp_path):
    config = tmp_path / "dsp.json"
    config.write_text(json.dumps({"type": "raw", "axes": ["a", "b"], "frequency": 10, "window_size_ms": 500}))
    assert read_config(config, None, None, 10).name(3) == "b at 100 ms"
    assert read_config(config, "flatten", ["p", "q"], 14).name(7) == "q Average"  # the flags win
    config.write_text("[1, 2]")
    with pytest.raises(GradcamError, match=r"dsp.json: expected a JSON object describing the DSP block"):
        read_config(config, None, None, 10)
    with pytest.raises(GradcamError, match=r"missing.json: DSP config not found \(expected a JSON file\)"):
        read_config(tmp_path / "missing.json", None, None, 10)


def test_group_shares_add_signed_attributions_per_group():
    layout = sensor_layout("raw", ["x", "y", "z"], 6)
    # x: +0.5 - 0.2 = 0.3; y: 0.6 + 0.3 = 0.9; z: -0.4 + 0.1 < 0 weighs nothing for the class.
    shares = group_shares(np.array([0.5, 0.6, -0.4, -0.2, 0.3, 0.1]), layout)
    assert shares == pytest.approx((0.25, 0.75, 0.0))
    assert group_shares(np.array([-0.1] * 6), layout) is None


def test_weight_sums_are_per_class_and_per_true_class_of_the_mistakes():
    sums = WeightSums(sensor_layout("raw", ["x", "y"], 4))
    sums.add("walk", GroupWeights((0.2, 0.8)), "walk")
    sums.add("walk", GroupWeights((0.6, 0.4), (1.0, 0.0)), "run")
    sums.add("run", GroupWeights(None), "run")  # nothing weighed for it: not counted
    weights = sums.result()
    assert weights.groups == ("x", "y") and [(c.name, c.windows) for c in weights.classes] == [("walk", 2)]
    assert weights.classes[0].shares == pytest.approx((0.4, 0.6))
    assert [(c.name, c.windows, c.shares) for c in weights.mistakes] == [("run", 1, (1.0, 0.0))]
