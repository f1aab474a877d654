"""The offline job as a user runs it: `python main.py --model ... --dataset ...`, then deploy.zip opened."""

import csv
import io
import json
import logging
import zipfile

import cv2
import numpy as np
import pytest
import tf_keras

from gradcam.cli import main
from gradcam.explainer import Explainer
from tests import helpers
from tests.helpers import ROOT, SHAPES, jpeg, write_export

CLASSES = ["circle", "square", "triangle"]


def _run(*args):
    return helpers.run_main(*args)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """One run of main.py on 24 shapes, a corrupt image, a text file and a name used twice."""
    tmp = tmp_path_factory.mktemp("job")
    samples = helpers.bundled_samples(24)
    twin_name = samples[0][0].split("/")[1]
    extra = [
        ("testing/broken.jpg", "circle", b"\xff\xd8\xff not really a jpeg"),
        ("testing/notes.txt", "circle", b"hello"),
        (f"training/{twin_name}", samples[1][1], samples[1][2]),  # same file name as a test sample
    ]
    export = write_export(tmp / "export.zip", samples + extra)
    result = _run(
        "--model",
        SHAPES / "model.h5",
        "--dataset",
        export,
        "--resize-mode",
        "fit-short",
        "--resize-method",  # reproduced exactly by hand (libvips's Lanczos-3 within a level: test_preprocess)
        "nearest",
        "--category",
        "all",
        "--out",
        tmp / "out",
    )
    return result, tmp / "out" / "deploy.zip", [*samples, extra[2]]


def test_job_exits_cleanly_and_says_where_the_zip_is(job):
    result, zip_path, _ = job
    assert result.returncode == 0, result.stderr
    assert f"wrote {zip_path}" in result.stdout
    assert "skipped testing/broken.jpg: not a decodable image" in result.stdout


def test_every_sample_is_in_the_zip_or_skipped_with_its_reason(job):
    _, zip_path, samples = job
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        results = json.loads(archive.read("results.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        pictures = helpers.sample_pictures(names)
        overlays = [r["overlay"] for r in rows]
        mistakes = [r["true_class_overlay"] for r in rows if r["correct"] == "False"]
        assert mistakes, "the 24 shapes hold a mistake"
        assert all(".true-" in name for name in mistakes), "a mistake's true class's map sits beside its overlay"
        assert sorted(pictures) == sorted(overlays + mistakes) and len(set(pictures)) == len(pictures)
        assert len(overlays) == len(samples) == len(rows)
        assert all(r["true_class_overlay"] == "" for r in rows if r["correct"] == "True")
        assert {r["source"] for r in rows} == {s[0] for s in samples}
        skipped = {s["source"]: s["reason"] for s in results["run"]["skipped"]}
        assert skipped["testing/broken.jpg"].startswith("not a decodable image")
        assert skipped["testing/notes.txt"].startswith("not an image")
        first = cv2.imdecode(np.frombuffer(archive.read(overlays[0]), np.uint8), cv2.IMREAD_COLOR)
    assert first.shape == (240, 320, 3), "160x120 overlays enlarged twice: at least 256 pixels on the long side"
    assert {n.split("/")[0] for n in overlays} <= {"correct", "incorrect"}


def test_split_follows_the_models_own_predictions(job):
    _, zip_path, samples = job
    probabilities = helpers.independent_predictions(samples, "nearest")
    with zipfile.ZipFile(zip_path) as archive:
        rows = {r["source"]: r for r in csv.DictReader(io.StringIO(archive.read("results.csv").decode()))}
    for (path, label, _), p in zip(samples, probabilities, strict=True):
        row = rows[path]
        predicted = CLASSES[int(np.argmax(p))]
        assert row["predicted"] == predicted
        assert float(row["confidence"]) == pytest.approx(float(p.max()), abs=1e-4)
        folder = "correct" if predicted == label else "incorrect"
        assert row["overlay"].startswith(f"{folder}/{label}/"), row["overlay"]
    assert any(r["overlay"].startswith("incorrect/") for r in rows.values()) or len(rows) < 24


def test_bad_model_is_one_clear_line_and_a_non_zero_exit(tmp_path):
    (tmp_path / "broken.h5").write_bytes(b"garbage")
    result = _run("--model", tmp_path / "broken.h5", "--dataset", SHAPES / "export.zip", "--out", tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "broken.h5: cannot load the Keras model" in lines[0]
    assert not (tmp_path / "deploy.zip").exists()


def test_model_without_convolution_fails_clearly(tmp_path, capsys):
    model = tf_keras.Sequential(
        [tf_keras.layers.InputLayer(input_shape=(12,)), tf_keras.layers.Dense(3, activation="softmax")]
    )
    model.save(tmp_path / "dense.h5")
    code = main(
        ["--model", str(tmp_path / "dense.h5"), "--dataset", str(SHAPES / "export.zip"), "--out", str(tmp_path)]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        "error: the model has no convolution layer and takes a flat vector of 12 values: it is explained over "
        "windows of DSP features (--features; Studio: a time-series impulse), not images\n"
    )


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(n)]


def test_regression_uses_the_error_threshold(tmp_path):
    model = helpers.single_output_cnn(None)
    model.save(tmp_path / "reg.keras")
    images = _images(6)
    inputs = np.stack([helpers.independent_resize(im, 32, 32, "nearest") / 255.0 for im in images]).astype(np.float32)
    values = model.predict(inputs, verbose=0)[:, 0]
    labels = [f"{v + d:.6f}" for v, d in zip(values, [0, 0.05, 0.5, -0.05, -2, 0.09], strict=True)]
    samples = [
        (f"testing/{i}.jpg", labels[i], cv2.imencode(".png", im[..., ::-1])[1].tobytes()) for i, im in enumerate(images)
    ]
    samples = [(path.replace(".jpg", ".png"), label, data) for path, label, data in samples]
    export = write_export(tmp_path / "e.zip", [*samples, ("testing/word.png", "big", samples[0][2])])
    job = ["--model", str(tmp_path / "reg.keras"), "--dataset", str(export), "--resize-method", "nearest"]
    assert main([*job, "--out", str(tmp_path)]) == 0
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        results = json.loads(archive.read("results.json"))
    rows = {r["source"]: r for r in results["results"]}
    assert [rows[f"testing/{i}.png"]["correct"] for i in range(6)] == [True, True, False, True, False, True]
    assert rows["testing/2.png"]["error"] == pytest.approx(0.5, abs=1e-4)
    assert rows["testing/2.png"]["overlay"].startswith("incorrect/2.png.pred-"), "no folder per regression value"
    assert results["run"]["task"] == "regression"
    assert results["run"]["skipped"] == [
        {"source": "testing/word.png", "reason": "regression label 'big' is not a number"}
    ]


def test_binary_model_and_unlabeled_samples(tmp_path):
    model = helpers.single_output_cnn("sigmoid")
    model.save(tmp_path / "bin.keras")
    images = _images(4, seed=3)
    samples = [(f"testing/{i}.jpg", ["no", "yes", None, "yes"][i], jpeg(im)) for i, im in enumerate(images)]
    export = write_export(tmp_path / "e.zip", samples)
    assert main(["--model", str(tmp_path / "bin.keras"), "--dataset", str(export), "--out", str(tmp_path)]) == 0
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        results = json.loads(archive.read("results.json"))
    assert results["run"]["task"] == "binary" and results["run"]["classes"] == ["no", "yes"]
    parameters = results["run"]["parameters"]
    assert (parameters["resize_mode"], parameters["input_scaling"]) == ("squash", "0..1"), (
        "the defaults used are reported"
    )
    unlabeled = [r for r in results["results"] if r["true_label"] is None]
    assert len(unlabeled) == 1 and unlabeled[0]["overlay"].startswith(f"unlabeled/{unlabeled[0]['predicted']}/")
    for r in results["results"]:
        assert r["predicted"] in ("no", "yes") and 0.5 <= r["confidence"] <= 1.0


def test_class_count_mismatch_names_the_fix(tmp_path, capsys):
    code = main(
        [
            "--model",
            str(SHAPES / "model.h5"),
            "--dataset",
            str(SHAPES / "export.zip"),
            "--classes",
            "a,b",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "give the class names in model output order (--classes a,b,c)" in capsys.readouterr().err


def test_panel_layout_puts_original_heatmap_and_blend_side_by_side(tmp_path):
    samples = helpers.bundled_samples(2)
    path, label, data = samples[0]
    wrong = CLASSES[(CLASSES.index(label) + 1) % 3]
    mislabelled = (path.replace("testing/", "testing/mislabelled-"), wrong, data)
    export = write_export(tmp_path / "e.zip", [*samples, mislabelled])
    args = ["--model", str(SHAPES / "model.h5"), "--dataset", str(export), "--classes", ",".join(CLASSES)]
    assert (
        main([*args, "--resize-mode", "fit-short", "--layout", "panel", "--faithfulness", "--out", str(tmp_path)]) == 0
    )
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        pictures = {
            r["source"]: cv2.imdecode(np.frombuffer(archive.read(r["overlay"]), np.uint8), cv2.IMREAD_COLOR)
            for r in rows
        }
    assert all(r["true_class_overlay"] == "" for r in rows), "a panel holds both maps"
    assert all(-1 <= float(r["faithfulness"]) <= 1 for r in rows)
    original = cv2.imdecode(np.frombuffer(data, np.uint8), 1).repeat(2, axis=0).repeat(2, axis=1)  # enlarged, sharp
    picture = pictures[path]
    assert picture.shape == (240 + 28, 3 * 320, 3), "tiles of the image enlarged to 320x240, one caption line"
    assert np.abs(picture[:240, :320].astype(int) - original.astype(int)).mean() < 4, "the first panel is the original"
    mistake = pictures[mislabelled[0]]
    assert mistake.shape == (240 + 2 * 28, 3 * 320, 3), "original, two blends, their titles and the caption"
    assert np.abs(mistake[:240, :640].astype(int) - picture[:240, [*range(320), *range(640, 960)]]).mean() < 4, (
        "the predicted class's blend is the same as the correct panel's"
    )
    assert np.abs(mistake[:240, 320:640].astype(int) - mistake[:240, 640:].astype(int)).mean() > 4


def test_the_caption_marks_a_map_not_to_trust():
    from gradcam.job.pictures import caption
    from gradcam.job.records import MapFacts, Outcome, SampleRecord

    def result(faithfulness: float) -> SampleRecord:
        facts = MapFacts("square", (1, 2), False, faithfulness)
        return SampleRecord("a.jpg", "testing", "circle", Outcome("square", 0.7, False), facts)

    assert caption(result(0.05)) == "true: circle  predicted: square (70%)  trust 0.05 (low)"
    assert caption(result(0.61)).endswith("trust 0.61")


def _source(overlay: str, samples) -> str:
    stem = overlay.split("/")[-1].split(".pred-")[0]
    return next(p for p, _, _ in samples if p.split("/")[-1].startswith(stem))


def test_blank_maps_for_an_unpredicted_target_class_are_counted_and_marked(tmp_path):
    """Explaining a class the model did not predict often gives an all-zero map after the ReLU:
    each is marked `blank`, counted in the log and results.json, and named in the report's warnings."""
    samples = helpers.bundled_samples(24)
    export = write_export(tmp_path / "export.zip", samples)
    out = tmp_path / "out"
    args = ["--model", SHAPES / "model.h5", "--dataset", export, "--resize-mode", "fit-short", "--out", out]
    result = _run(*args, "--target-class", "square")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out / "deploy.zip") as archive:
        rows = {r["source"]: r for r in csv.DictReader(io.StringIO(archive.read("results.csv").decode()))}
        run = json.loads(archive.read("results.json"))["run"]
    model = tf_keras.models.load_model(SHAPES / "model.h5", compile=False)
    explainer = Explainer(model, CLASSES, resize_mode="fit-short")
    blank = 0
    for path, _, data in samples:
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        inputs = explainer.prepare(image)[0].reshape(-1)
        reference = helpers.reference_cam(model, [["conv2d_4"]], inputs, 1, "gradcam", "classification")
        assert rows[path]["blank"] == str(not reference.max() > 0), path
        assert (rows[path]["peak_x"] == "") == (not reference.max() > 0)
        blank += not reference.max() > 0
    assert 0 < blank < len(samples)
    message = f"{blank} of {len(samples)} heatmaps are blank: nothing in those images raised the score of square"
    assert run["counts"]["blank"] == blank
    assert any(w.startswith(message) for w in run["warnings"])
    assert result.stdout.splitlines()[-1] == f"WARNING: {run['warnings'][-1]}" and message in result.stdout


def test_the_explained_layers_and_a_coarse_map_are_reported(tmp_path, caplog):
    """On Edge Impulse's MobileNetV2 96x96 the log and results.json name the layers and their sizes;
    the last conv alone (3x3) is warned about. In this process: its log lines are the command's."""
    export = write_export(tmp_path / "export.zip", helpers.bundled_samples(6))
    model = ROOT / "tests" / "fixtures" / "mobilenetv2_96.h5"
    runs = {}
    for layer in ("auto", "last-conv"):
        out = tmp_path / layer
        job = ["--model", model, "--dataset", export, "--resize-mode", "fit-short", "--evidence", "off"]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gradcam"):
            assert main([*map(str, job), "--layer", layer, "--out", str(out)]) == 0
        with zipfile.ZipFile(out / "deploy.zip") as archive:
            runs[layer] = ("\n".join(caplog.messages), json.loads(archive.read("results.json"))["run"])
    stdout, run = runs["auto"]
    assert [(x["name"], x["size"], x["method"]) for x in run["layers"]] == [
        ("model/block_13_expand_relu", "6x6", "gradcam"),
        ("model/block_6_expand_relu", "12x12", "layercam"),
        ("model/block_3_expand_relu", "24x24", "layercam"),
    ]
    assert run["last_conv"] == {"name": "model/Conv_1", "size": "3x3"} and run["resolution"] == "24x24"
    assert run["warnings"] == [] and "warning" not in stdout
    assert (
        "explaining model/block_13_expand_relu (6x6, gradcam) x model/block_6_expand_relu (12x12, layercam) x "
        "model/block_3_expand_relu (24x24, layercam); the last conv is model/Conv_1 (3x3)" in stdout
    )
    stdout, run = runs["last-conv"]
    assert run["resolution"] == "3x3" and [x["name"] for x in run["layers"]] == ["model/Conv_1"]
    assert run["warnings"][0].startswith("the heatmaps are only 3x3 cells (model/Conv_1)")
    assert f"warning: {run['warnings'][0]}" in stdout


def test_labels_that_are_not_model_classes_are_named_with_counts(tmp_path):
    job = ("--model", SHAPES / "model.h5", "--dataset", SHAPES / "export.zip", "--resize-mode", "fit-short")
    result = _run(*job, "--classes", "Circle,square,triangle", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(SHAPES / "export.zip") as export:
        files = json.loads(export.read("info.labels"))["files"]
    circles = sum(f["category"] == "testing" and f["label"]["label"] == "circle" for f in files)
    warning = (
        f"{circles} images have a label that is not one of the model's classes (Circle, square, triangle): "
        f"'circle' ({circles} images, did you mean 'Circle'?); they count as incorrect"
    )
    lines = result.stdout.splitlines()
    assert f"warning: {warning}" in lines[: lines.index(next(x for x in lines if x.startswith("done: ")))]
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        warnings = json.loads(archive.read("results.json"))["run"]["warnings"]
        assert warnings[0] == warning, "the first warning (then this example's 3 blank maps')"
        assert "did you mean" in archive.read("index.html").decode()
    assert helpers.closing_warnings(result.stdout) == warnings, "the log ends with the warnings"


def test_camera_sized_photos_give_overlays_capped_in_size_and_peaks_in_file_pixels(tmp_path):
    """Shapes scaled up to 4000x3000 photos: overlays at --max-overlay-size (default 1024) on the
    long side, or the original size with 0; the same predictions, and peaks in the file's pixels."""
    shapes, labels, _boxes = helpers.shapes_test_set(grey=True)
    samples = []
    for i in range(3):
        big = cv2.resize(shapes[i], (4000, 3000), interpolation=cv2.INTER_LINEAR)
        samples.append((f"testing/photo{i}.jpg", labels[i], helpers.jpeg(big)))
    export = write_export(tmp_path / "export.zip", samples)
    runs = {}
    for size in ("1024", "0"):
        out = tmp_path / size
        argv = ["--model", str(SHAPES / "model.h5"), "--dataset", str(export), "--max-overlay-size", size]
        assert main([*argv, "--out", str(out)]) == 0
        with zipfile.ZipFile(out / "deploy.zip") as archive:
            rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
            shapes_seen = [
                cv2.imdecode(np.frombuffer(archive.read(r["overlay"]), np.uint8), cv2.IMREAD_COLOR).shape for r in rows
            ]
        runs[size] = rows
        assert shapes_seen == [(768, 1024, 3) if size == "1024" else (3000, 4000, 3)] * 3
    cell = 4000 / 16  # the shapes model's map is 16x16
    for reduced, full in zip(runs["1024"], runs["0"], strict=True):
        assert reduced["predicted"] == full["predicted"]
        for axis in ("peak_x", "peak_y"):
            assert abs(int(reduced[axis]) - int(full[axis])) <= cell / 2, (reduced, full)


def test_a_96x96_image_gets_a_readable_panel_and_peaks_in_its_own_pixels(tmp_path):
    """Edge Impulse's usual size: tiles enlarged three times (at least 256 pixels), the caption whole."""
    small = [
        (
            path,
            label,
            jpeg(cv2.resize(cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), 1), cv2.COLOR_BGR2RGB), (96, 96))),
        )
        for path, label, data in helpers.bundled_samples(6)
    ]
    path, label, data = small[0]
    wrong = CLASSES[(CLASSES.index(label) + 1) % 3]
    export = write_export(tmp_path / "e.zip", [*small, (path.replace("testing/", "testing/x-"), wrong, data)])
    args = ["--model", str(SHAPES / "model.h5"), "--dataset", str(export), "--classes", ",".join(CLASSES)]
    assert main([*args, "--layout", "panel", "--out", str(tmp_path)]) == 0
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        pictures = [cv2.imdecode(np.frombuffer(archive.read(r["overlay"]), np.uint8), 1) for r in rows]
    for row, picture in zip(rows, pictures, strict=True):
        mistake = row["correct"] == "False"
        captions = 2 if mistake else 1  # a mistake's panel has a line of tile titles above its caption
        assert picture.shape == (288 + 28 * captions, 3 * 288, 3), row["source"]
        strip = picture[288 + 28 * (captions - 1) :].min(axis=2) < 128  # the caption's ink
        columns = np.flatnonzero(strip.any(axis=0))
        assert columns.size and columns[-1] < picture.shape[1] - 6, "the whole caption fits the panel"
        assert 0 <= int(row["peak_x"]) < 96 and 0 <= int(row["peak_y"]) < 96, "peaks in the file's pixels"
    assert any(r["correct"] == "False" for r in rows)
