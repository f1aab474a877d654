"""What a new user trips over on the command line: files that are not what a flag expects, signals,
library chatter, a silent start-up, and what a result prints as."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import cv2
import numpy as np
import pytest

from gradcam.engine import layers
from gradcam.errors import GradcamError
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES, SHAPES, jpeg, write_export

JOB = ["--model", SHAPES / "model.h5", "--resize-mode", "fit-short", "--classes", ",".join(SHAPE_CLASSES)]
JOB += ["--evidence", "off"]  # what a process shows; the checks and auto's calibration are tested on their own


def _run(*args, **options):
    """main.py in a process of its own: for what only a process shows (signals, the start-up, quiet imports)."""
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600, **options
    )


def _refused(result) -> str:
    """The one line of a run that stopped with exit 2, having written nothing."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_model_zip_given_as_the_dataset_is_refused_saying_what_it_holds(tmp_path):
    model_zip = tmp_path / "trained.h5.zip"
    with zipfile.ZipFile(model_zip, "w") as archive:
        archive.write(SHAPES / "model.h5", "model.h5")
    line = _refused(helpers.run_main(*JOB, "--dataset", model_zip, "--out", tmp_path / "out"))
    assert line == (
        f"error: {model_zip}: no usable testing image (found model.h5: not an image (expected one of .jpg, "
        ".jpeg, .png, .bmp, .webp)); expected an Edge Impulse export"
    )
    assert not (tmp_path / "out" / "deploy.zip").exists()


def test_an_export_with_training_images_only_says_which_category_to_ask_for(tmp_path):
    images = [(f"training/s{i}.jpg", "circle", jpeg(np.full((40, 40, 3), 90 * i, np.uint8))) for i in range(3)]
    export = write_export(tmp_path / "export.zip", images)
    line = _refused(helpers.run_main(*JOB, "--dataset", export, "--out", tmp_path / "out"))
    assert line == (
        f"error: {export}: no testing images found (it holds 3 training images: use --category training or all)"
    )


def test_labels_taken_from_file_names_are_a_warning(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        files = [f for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == "testing"][:4]
        for f in files:
            (folder / f"{f['label']['label']}.{f['path'].split('/')[-1]}").write_bytes(archive.read(f["path"]))
    result = helpers.run_main(
        *JOB, "--dataset", folder, "--classes", ",".join(SHAPE_CLASSES), "--out", tmp_path / "out"
    )
    assert result.returncode == 0, result.stderr
    warning = (
        "4 of 4 images are not listed in info.labels: their labels were taken from their file names (the part "
        "before the first dot); check them, or export the dataset from Edge Impulse"
    )
    assert f"warning: {warning}" in result.stdout.splitlines(), "said before the work"
    assert result.stdout.splitlines()[-1] == f"WARNING: {warning}", "and again last"


def test_a_tflite_model_is_the_model_by_its_content_whatever_its_name(tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(4,)), tf_keras.layers.Dense(3)])
    tflite = tmp_path / "trained.tflite"
    tflite.write_bytes(helpers.tflite_file(model, None))
    line = _refused(helpers.run_main("--model", tflite, "--dataset", SHAPES / "export.zip", "--out", tmp_path / "out"))
    assert line == (
        "error: the model has no convolution layer and takes a flat vector of 4 values: it is explained over "
        "windows of DSP features (--features; Studio: a time-series impulse), not images"
    )
    renamed = tmp_path / "model.h5"  # the same bytes under a Keras name: found by their identifier
    renamed.write_bytes(tflite.read_bytes())
    from gradcam.engine.formats import load_model
    from gradcam.engine.tflite_graph import Graph

    loaded = load_model(renamed)
    assert isinstance(loaded, Graph) and [op.op for op in loaded.operators] == ["FULLY_CONNECTED"]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--model", "error: {path}: model file not found"),
        ("--dataset", "error: {path}: dataset not found (expected an export zip or its folder)"),
        ("--tflite", "error: {path}: TFLite model not found"),
    ],
)
def test_a_missing_file_is_refused_before_tensorflow_loads(flag, message, tmp_path):
    path = tmp_path / "nowhere"
    files = {"--model": SHAPES / "model.h5", "--dataset": SHAPES / "export.zip", flag: path}
    argv = [str(part) for pair in files.items() for part in pair]
    code = (
        "import sys; from gradcam.cli import main; code = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [message.format(path=path)]
    assert result.stdout.splitlines()[-1] == "False", "TensorFlow was not imported"


def test_a_mistyped_layer_gets_the_closest_names():
    import tf_keras

    model = tf_keras.models.load_model(ROOT / "tests" / "fixtures" / "mobilenetv2_96.h5", compile=False)
    with pytest.raises(GradcamError) as error:
        layers.choose(layers.keras_candidates(model), "model/block_6_expand_rel", 96)
    message = str(error.value)
    assert message.startswith(
        "layer 'model/block_6_expand_rel': no such layer in the model; did you mean 'model/block_6_expand_relu' or "
    ), "the closest first"
    assert message.endswith("? (run with --list-layers to see its layers)") and message.count("' or '") <= 2


def _long_export(tmp_path, n: int = 2000):
    """Enough images that the job is still running when it is signalled."""
    rng = np.random.default_rng(0)
    images = [cv2.resize(rng.integers(0, 256, (6, 8, 3), np.uint8), (160, 120)) for _ in range(8)]
    samples = [(f"testing/s{i}.jpg", "circle", jpeg(images[i % 8])) for i in range(n)]
    return write_export(tmp_path / "export.zip", samples)


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "interrupted; deploy.zip not written"),
        (signal.SIGTERM, 143, "terminated; deploy.zip not written"),
    ],
)
def test_a_signal_ends_the_job_in_one_line_leaving_no_half_written_zip(signum, code, line, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-u", "main.py", *map(str, [*JOB, "--dataset", _long_export(tmp_path), "--out", out])]
    # As a terminal's Ctrl-C reaches a foreground job: SIGINT not ignored (a test runner's worker
    # may have it ignored, and a child inherits that).
    job = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    started = time.monotonic()
    for output in job.stdout:
        if output.startswith("explaining: ") or time.monotonic() - started > 120:
            break
    assert (out / "deploy.zip.partial").exists(), "signalled while writing"
    job.send_signal(signum)
    _, err = job.communicate(timeout=120)
    assert (job.returncode, err.splitlines()) == (code, [line])
    assert list(out.iterdir()) == [], "no deploy.zip, no deploy.zip.partial"


def test_a_truncated_png_is_skipped_without_opencvs_chatter_on_stderr(tmp_path):
    png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8))[1].tobytes()
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        first = next(f for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == "testing")
        good = (first["path"], first["label"]["label"], archive.read(first["path"]))
    export = write_export(tmp_path / "export.zip", [good, ("testing/cut.png", "circle", png[:400])])
    result = _run(*JOB, "--dataset", export, "--out", tmp_path / "out")
    assert result.returncode == 0 and result.stderr == ""
    assert "skipped testing/cut.png: not a decodable image (corrupt or unsupported format)" in result.stdout


def test_the_start_up_is_announced_before_the_first_image(tmp_path):
    result = _run(*JOB, "--dataset", SHAPES / "export.zip", "--out", tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == "loading TensorFlow"
    assert lines[1] == "loading the model model.h5"
    ready = next(i for i, x in enumerate(lines) if x.startswith("model ready after "))
    first = next(i for i, x in enumerate(lines) if x.startswith("explaining: "))
    assert 1 < ready < first


def test_a_result_prints_as_a_short_summary_and_the_import_is_quiet():
    code = (
        "import numpy as np; from gradcam import Explainer; "
        "e = Explainer.from_file('examples/shapes/model.h5', ['circle', 'square', 'triangle'], "
        "resize_mode='fit-short'); print(e.explain([np.full((120, 160, 3), 128, np.uint8)])[0])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "TensorFlow's start-up messages stay off stderr"
    [line] = result.stdout.splitlines()
    assert line.startswith("Explanation(label='") and "confidence=" in line and "map=16x16" in line
    assert "faithfulness=" in line and "array" not in line and len(line) < 200


def test_a_signal_whose_raise_was_lost_still_stops_the_job_at_the_next_check():
    """Native code on the main thread can clear a pending KeyboardInterrupt; the loop asks again."""
    from gradcam import stopping

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh process
    try:
        for signum, raised in [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, stopping.Terminated)]:
            with stopping.handled():
                stopping.check()  # nothing asked for yet
                with pytest.raises(raised):  # the first raise, which native code could have swallowed
                    os.kill(os.getpid(), signum)
                    time.sleep(1)
                with pytest.raises(raised):
                    stopping.check()
            assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM], "the handlers restored"
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_signal_during_a_zip_write_lands_after_it_and_the_half_written_zip_is_removed(tmp_path):
    """The writes of deploy.zip defer a stop: the entry is written whole, the stop is raised after it,
    and abort then closes and removes the zip (a cut entry would leave it unable to close)."""
    from gradcam import stopping
    from gradcam.report.writer import DeployZip

    output = DeployZip(tmp_path / "deploy.zip")
    write = output._zip.writestr

    def signalled_while_writing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the signal is delivered here, inside the write
        write(*args, **kwargs)

    output._zip.writestr = signalled_while_writing
    with stopping.handled(), pytest.raises(stopping.Terminated):
        output.add_tiles({("explained", "circle"): b"a picture"})
    assert output._zip.namelist() == ["classes/explained/circle.jpg"], "written whole before the stop"
    output.abort()
    assert list(tmp_path.iterdir()) == []
