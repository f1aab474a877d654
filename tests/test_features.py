"""Audio models offline, as a user runs them on the Dashboard's "Download block output" files:
`main.py --model M --features X_testing.npy --labels y_testing.npy`, then deploy.zip opened. The
features are those of tests/audio.py; where each burst lies is known from the clips, so the peak times
in results.csv are checked against it."""

import csv
import io
import json
import logging
import re
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import tf_keras

from gradcam.cli import main
from gradcam.edge.features import Timing, Window, feature_set, label_rows
from gradcam.errors import GradcamError
from gradcam.job.looks import ClassLook, Looks, Region, Shortcut
from gradcam.job.run import explain_dataset
from gradcam.job.warnings import shortcut_warnings
from tests import audio
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
CLASSES = audio.CLASSES
FRAME_MS = 1000 / audio.FRAMES  # a frame's share of the window
SHAPE = (audio.FRAMES, audio.FILTERS)
FRAME_PX, BAND_PX = 4, 4  # a feature's block in the picture: 99 frames x 40 filters -> 396 x 160


@pytest.fixture(scope="module")
def keywords(tmp_path_factory):
    """60 windows' features and labels in both layouts, and the clips they come from."""
    folder = tmp_path_factory.mktemp("keywords")
    data = audio.clips(60, seed=7)
    np.save(folder / "X_testing.npy", audio.features(data))
    np.save(folder / "y_testing.npy", audio.labels_4col(data))
    np.save(folder / "y_onehot.npy", audio.labels_onehot(data))
    return folder, data


def _results(zip_path) -> tuple[list[dict], dict, zipfile.ZipFile]:
    archive = zipfile.ZipFile(zip_path)
    rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
    return rows, json.loads(archive.read("results.json")), archive


def _job(keywords, tmp_path, kind: str, *flags: str) -> tuple[list[dict], dict, zipfile.ZipFile]:
    folder, _ = keywords
    args = ["--model", FIXTURES / f"keywords_{kind}.h5", "--features", folder / "X_testing.npy"]
    code = main([*map(str, args), "--classes", ",".join(CLASSES), "--out", str(tmp_path), *flags])
    assert code == 0
    return _results(tmp_path / "deploy.zip")


# --- Labels, by content ---


def test_four_column_labels_give_the_class_sample_and_time_range():
    labels = np.array([[2, 1007, 0, 1000], [1, 1007, 500, 1500], [3, 1009, 0, 1000]], np.int32)
    rows = label_rows(labels, CLASSES, "y.npy")
    assert rows == [
        ("no", Window(0, 1007, 0, 1000)),
        ("yes", Window(1, 1007, 500, 1500)),
        ("stop", Window(2, 1009, 0, 1000)),
    ]


def test_one_hot_labels_with_four_classes_are_one_hot_not_four_columns():
    labels = np.eye(4, dtype=np.float32)[[3, 0, 2]]
    assert label_rows(labels, ["a", "b", "c", "d"], "y.npy") == [("d", None), ("a", None), ("c", None)]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.ones((3, 3), np.int32), r"y.npy: expected int labels with 4 columns .* or one-hot rows; its 3 columns"),
        (np.array([[4, 1, 0, 1000]]), r"y.npy: label index 4 out of range: expected 1 to 3"),
        (np.eye(2, dtype=np.float32), r"y.npy: one-hot labels of 2 classes for a model with 3"),
        (np.array([1, 2, 3]), r"y.npy: expected .*; got an array of shape \(3,\)"),
        (np.array([[1.5, 1, 0, 1000]]), r"its 4 columns are neither"),
    ],
)
def test_labels_in_no_known_layout_are_refused(labels, message):
    with pytest.raises(GradcamError, match=message):
        label_rows(labels, CLASSES, "y.npy")


def test_the_dsp_metadata_gives_each_row_its_sample_and_window():
    timing = Timing([(501, 3), (502, 1)], window_ms=1000, increase_ms=250)
    features = np.zeros((4, 6), np.float32)
    windows = feature_set(features, None, CLASSES, source=ROOT, timing=timing).windows
    assert [(w.sample_id, w.start_ms, w.end_ms) for w in windows.values()] == [
        (501, 0, 1000),
        (501, 250, 1250),
        (501, 500, 1500),
        (502, 0, 1000),
    ]
    assert list(windows) == [
        "sample-501.0-1000ms",
        "sample-501.250-1250ms",
        "sample-501.500-1500ms",
        "sample-502.0-1000ms",
    ]


def test_labels_and_features_must_count_the_same_windows():
    with pytest.raises(GradcamError, match=r"^y: 2 labels for 3 windows of features in X$"):
        feature_set(np.zeros((3, 6)), np.eye(3)[:2], CLASSES, source=ROOT, names=("X", "y"))


# --- The job ---


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_the_job_on_keyword_features_finds_each_burst_in_time(keywords, tmp_path, kind):
    folder, data = keywords
    rows, document, archive = _job(keywords, tmp_path, kind, "--labels", str(folder / "y_testing.npy"))
    # auto: Grad-CAM along time (1-D), HiResCAM over time and frequency (2-D); bench/audio_methods.py
    assert document["run"]["method"] == {"1d": "gradcam", "2d": "hirescam"}[kind] and len(rows) == 60
    assert {row["peak_block"] for row in rows} == {"X_testing.npy"}
    bursts = data.bursts * 1000 / audio.RATE  # ms
    hits = []
    for row, (first, last), label in zip(rows, bursts, data.labels, strict=True):
        assert (row["source"], row["true_label"]) == (f"sample-{row['sample_id']}.0-1000ms", CLASSES[label])
        assert (row["start_ms"], row["end_ms"]) == ("0", "1000")
        if row["correct"] == "True":
            hits.append(first - FRAME_MS <= int(row["peak_ms"]) <= last + FRAME_MS)
    assert len(hits) >= 54 and np.mean(hits) >= 0.85, np.mean(hits)
    picture = cv2.imdecode(np.frombuffer(archive.read(rows[0]["overlay"]), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == (audio.FILTERS * BAND_PX, audio.FRAMES * FRAME_PX), "turned: time across, frequency up"
    assert rows[0]["overlay"].startswith(f"correct/{rows[0]['true_label']}/sample-")
    if kind == "1d":
        assert all(row["peak_filter"] == "" for row in rows), "a 1-D map says nothing of frequency"
    else:
        correct = [(row, label) for row, label in zip(rows, data.labels, strict=True) if row["correct"] == "True"]
        centres = audio.mel_points()[1:-1]
        bands = [audio.BANDS[CLASSES[label]] for _, label in correct]
        peaks = [centres[int(row["peak_filter"])] for row, _ in correct]
        assert np.mean([low <= hz <= high for hz, (low, high) in zip(peaks, bands, strict=True)]) >= 0.8


def test_the_picture_puts_time_across_and_low_frequencies_at_the_bottom(tmp_path):
    """A window whose only sound is in the lowest filters from 300 to 400 ms, drawn with no heat."""
    features = np.zeros((2, audio.FRAMES * audio.FILTERS), np.float32)
    window = features[0].reshape(audio.FRAMES, audio.FILTERS)
    window[30:40, :5] = 1.0
    np.save(tmp_path / "X.npy", features)
    model = FIXTURES / "keywords_1d.h5"
    args = ["--model", model, "--features", tmp_path / "X.npy", "--alpha", "0", "--out", tmp_path / "out"]
    assert main([*map(str, args), "--classes", ",".join(CLASSES)]) == 0
    rows, _, archive = _results(tmp_path / "out" / "deploy.zip")
    assert [row["source"] for row in rows] == ["window-00000", "window-00001"]
    grey = cv2.imdecode(np.frombuffer(archive.read(rows[0]["overlay"]), np.uint8), cv2.IMREAD_GRAYSCALE)
    bright = np.argwhere(grey > 128)
    assert bright[:, 0].min() >= grey.shape[0] - 5 * BAND_PX - 2, "the low filters at the bottom"
    assert (bright[:, 1].min(), bright[:, 1].max()) == pytest.approx((30 * FRAME_PX, 40 * FRAME_PX - 1), abs=2)


def test_one_hot_labels_give_windows_by_row(keywords, tmp_path):
    folder, data = keywords
    rows, document, _ = _job(keywords, tmp_path, "1d", "--labels", str(folder / "y_onehot.npy"))
    assert [row["source"] for row in rows[:2]] == ["window-00000", "window-00001"]
    assert [row["true_label"] for row in rows] == [CLASSES[label] for label in data.labels]
    assert rows[0]["sample_id"] == "" and rows[0]["peak_ms"] == "" and rows[0]["peak_frame"] != ""
    assert document["run"]["counts"]["correct"] + document["run"]["counts"]["incorrect"] == 60


def test_without_labels_every_window_is_unlabeled(keywords, tmp_path):
    rows, document, _ = _job(keywords, tmp_path, "2d", "--layout", "panel")
    assert {row["overlay"].split("/")[0] for row in rows} == {"unlabeled"}
    assert document["run"]["counts"]["unlabeled"] == 60


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "keywords_1d.h5",
            r"X.npy: windows of 520 values; the model takes 3960 \(99 frames x 40\): "
            r"the features of another DSP block\?",
        ),
        ("mobilenetv2_96.h5", r"the model takes images \(96x96x3\), not windows of features as .*X.npy holds"),
    ],
)
def test_features_that_do_not_fit_the_model_are_refused_in_one_line(tmp_path, capsys, model, message):
    np.save(tmp_path / "X.npy", np.zeros((2, 520), np.float32))
    args = ["--model", str(FIXTURES / model), "--features", str(tmp_path / "X.npy"), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "deploy.zip").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--features", "{tmp}/missing.npy"],
            "error: {tmp}/missing.npy: features file not found (expected an .npy file)",
        ),
        (["--features", "{tmp}/X.npy", "--labels", "{tmp}/nope.npy"], "error: {tmp}/nope.npy: labels file not found"),
        (["--labels", "{tmp}/X.npy"], "error: --labels goes with --features (the labels of its windows)"),
        (["--features", "{tmp}/text.npy"], "error: {tmp}/text.npy: not an .npy file"),
    ],
)
def test_bad_feature_flags_are_refused_in_one_line(tmp_path, capsys, flags, message):
    np.save(tmp_path / "X.npy", np.zeros((2, 520), np.float32))
    (tmp_path / "text.npy").write_text("not numpy")
    model = FIXTURES / "keywords_1d.h5"
    args = [flag.format(tmp=tmp_path) for flag in ["--model", str(model), *flags, "--out", "{tmp}/out"]]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(message.format(tmp=tmp_path))


def test_an_export_given_offline_is_not_matched_to_windows_by_guessing(keywords, tmp_path):
    folder, _ = keywords
    args = ["--model", FIXTURES / "keywords_1d.h5", "--features", folder / "X_testing.npy", "--dataset", folder]
    result = subprocess.run(
        [sys.executable, "main.py", *map(str, args), "--classes", ",".join(CLASSES), "--out", tmp_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if "without guessing" in line]
    assert warnings == [
        f"warning: {folder}: its audio cannot be matched to the windows without guessing (the export's "
        "file names carry no sample ids): the report shows spectrograms without players; Studio and "
        "--api-key runs fetch each sample's audio by id"
    ]
    rows, _, archive = _results(tmp_path / "deploy.zip")
    assert {row["audio"] for row in rows} == {""} and not [n for n in archive.namelist() if n.startswith("audio/")]


def _small_model(path, activation: str | None, dense: bool = False):
    """A 1-D conv audio model with one output (binary: sigmoid; regression: linear), untrained; or
    (dense) spectral features into Dense layers, with no convolution."""
    k = tf_keras.layers
    tf_keras.utils.set_random_seed(3)
    body = (
        [k.Dense(8, activation="relu")] if dense else [k.Reshape(SHAPE), k.Conv1D(4, 3, activation="relu"), k.Flatten()]
    )
    model = tf_keras.Sequential(
        [k.InputLayer(input_shape=(SHAPE[0] * SHAPE[1],)), *body, k.Dense(1, activation=activation)]
    )
    model.save(path)
    return path


def test_binary_and_regression_audio_models_are_judged_as_for_images(keywords, tmp_path):
    folder, data = keywords
    binary = _small_model(tmp_path / "binary.h5", "sigmoid")
    np.save(tmp_path / "y2.npy", np.eye(2, dtype=np.float32)[data.labels % 2])
    args = ["--model", binary, "--features", folder / "X_testing.npy", "--labels", tmp_path / "y2.npy"]
    assert main([*map(str, args), "--classes", "quiet,word", "--out", str(tmp_path / "binary")]) == 0
    rows, document, _ = _results(tmp_path / "binary" / "deploy.zip")
    assert document["run"]["task"] == "binary" and len(rows) == 60
    assert [row["true_label"] for row in rows] == [["quiet", "word"][label % 2] for label in data.labels]
    assert all(row["overlay"].startswith(f"{'correct' if row['correct'] == 'True' else 'incorrect'}/") for row in rows)

    regression = _small_model(tmp_path / "regression.h5", None)
    values = data.bursts[:, 0] / audio.RATE  # the burst's start in s, say
    np.save(tmp_path / "y.npy", values[:, None])
    args = ["--model", regression, "--features", folder / "X_testing.npy", "--labels", tmp_path / "y.npy"]
    assert main([*map(str, args), "--regression-threshold", "0.2", "--out", str(tmp_path / "regression")]) == 0
    rows, document, _ = _results(tmp_path / "regression" / "deploy.zip")
    assert document["run"]["task"] == "regression"
    errors = [abs(float(row["score:value"]) - float(row["true_label"])) for row in rows]
    assert [float(row["true_label"]) for row in rows] == pytest.approx(values, abs=1e-5)
    assert [float(row["error"]) for row in rows] == pytest.approx(errors, abs=1e-5)
    assert [row["correct"] == "True" for row in rows] == [e <= 0.2 for e in errors]


def test_a_mistaken_window_also_gets_the_map_of_its_true_class(keywords, tmp_path):
    data = keywords[1]
    labels = audio.labels_4col(data)
    labels[:5, 0] = labels[:5, 0] % 3 + 1  # the first five windows labelled with another class
    np.save(tmp_path / "y.npy", labels)
    rows, _, archive = _job(keywords, tmp_path / "out", "1d", "--labels", str(tmp_path / "y.npy"))
    wrong = [row for row in rows if row["correct"] == "False"]
    assert [row["source"] for row in wrong] == [row["source"] for row in rows[:5]]
    for row in wrong:
        assert (
            row["true_class_overlay"].startswith(f"incorrect/{row['true_label']}/") and row["true_class_faithfulness"]
        )
        picture = cv2.imdecode(np.frombuffer(archive.read(row["true_class_overlay"]), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[:2] == (audio.FILTERS * BAND_PX, audio.FRAMES * FRAME_PX)


def test_a_dense_model_on_audio_features_is_explained_over_them(keywords, tmp_path, caplog):
    """A binary Dense model on MFE features, offline without the block's shape: attributions over its
    input (Integrated Gradients), the features one lane, and the log says they could not be grouped."""
    folder, _ = keywords
    model = _small_model(tmp_path / "dense.h5", "sigmoid", dense=True)
    args = ["--model", str(model), "--features", str(folder / "X_testing.npy"), "--out", str(tmp_path)]
    caplog.set_level(logging.INFO, "gradcam")
    assert main(args) == 0
    assert "warning: the axes are not known: the features are one group" in caplog.text
    rows, document, archive = _results(tmp_path / "deploy.zip")
    assert document["run"]["method"] == "expected-gradients" and len(rows) == 60
    assert document["run"]["weights"]["groups"] == ["features"]
    overlay = next(r["overlay"] for r in rows if r["overlay"])
    picture = cv2.imdecode(np.frombuffer(archive.read(overlay), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] == 64 + 1600, "3,960 features shrunk to the widest lane"


def test_the_python_api_explains_windows_of_features(keywords, tmp_path):
    from gradcam import explain_dataset

    folder, data = keywords
    model = FIXTURES / "keywords_2d.h5"
    features, labels = folder / "X_testing.npy", str(folder / "y_testing.npy")
    summary = explain_dataset(model, out=tmp_path, features=features, labels=labels, classes=CLASSES)
    assert summary.info.method == "hirescam" and summary.info.tally.correct + summary.info.tally.incorrect == 60
    rows, _, _ = _results(summary.zip_path)
    assert [row["true_label"] for row in rows] == [CLASSES[label] for label in data.labels]


def test_an_int8_audio_model_s_own_maps_are_drawn_beside_the_keras_maps(keywords, tmp_path):
    from gradcam.engine.formats import load_model
    from tests.helpers import converted

    folder, _ = keywords
    model = load_model(FIXTURES / "keywords_2d.h5")
    features = np.load(folder / "X_testing.npy")
    (tmp_path / "int8.tflite").write_bytes(converted(model, features[:40]).content)
    rows, document, archive = _job(
        keywords, tmp_path, "2d", "--labels", str(folder / "y_testing.npy"), "--tflite", str(tmp_path / "int8.tflite")
    )
    drawn = [row for row in rows if not row["tflite_map_withheld"]]
    assert len(drawn) >= 57 and all(row["tflite_overlay"] for row in drawn)
    picture = cv2.imdecode(np.frombuffer(archive.read(drawn[0]["tflite_overlay"]), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == (audio.FILTERS * BAND_PX, audio.FRAMES * FRAME_PX), "turned as the Keras picture"
    assert all(row["tflite_peak_x"] == "" for row in rows), "a window's peak is a time and a band, not a pixel"
    agreement = document["run"]["tflite"]["maps"]["total"]
    assert agreement["maps"] == sum(row["map_agreement"] != "" for row in drawn) and agreement["share"] <= 0.1


# --- The class summaries ---


def test_each_classs_mean_map_lies_in_its_band_and_is_a_tile_in_deploy_zip(keywords, tmp_path):
    """The 2-D model's mean map per class, summed over time, is hottest in the class's own filters
    (the summaries' frame is the picture turned: high filters at the top)."""
    folder, _ = keywords
    summary = explain_dataset(
        FIXTURES / "keywords_2d.h5",
        out=tmp_path,
        features=folder / "X_testing.npy",
        labels=folder / "y_testing.npy",
        classes=CLASSES,
    )
    looks = summary.info.totals.looks
    assert [look.name for look in looks.classes] == sorted(CLASSES)
    filters = {"yes": (4, 9), "no": (16, 21), "stop": (28, 33)}  # tests/audio.py: BANDS
    for look in looks.classes:
        rows = look.heat.shape[0]
        hottest = rows - 1 - int(np.argmax(look.heat.sum(axis=1)))  # counted from the bottom
        low, high = filters[look.name]
        assert low - 1 <= hottest * audio.FILTERS / rows <= high + 2, (look.name, hottest)
    names = zipfile.ZipFile(tmp_path / "deploy.zip").namelist()
    assert {f"classes/explained/{name}.jpg" for name in CLASSES} <= set(names)


def test_an_audio_shortcut_is_told_in_time_not_pixels():
    region = Region(0, 10, 12)  # 12 of 96 px: 50 of the picture's 396 (12.6%)
    look = ClassLook("yes", 40, np.zeros((39, 96)), np.zeros((39, 96, 3), np.uint8), Shortcut(region, 0.9, 0.1), True)
    looks = Looks((39, 96), [look], [], (396, 160), windows=True)
    assert shortcut_warnings(looks) == [
        "class 'yes': in 90% of its windows the map sits on the same frames, 0% to 13% into the window, at the "
        "left of its picture, whose features are nearly identical in every window: the model may be reading an "
        "artefact (a click, a silence pad), not the sound"
    ]
