"""The package as a user installs it: `pip install .` gives `gradcam` and the `gradcam-block` command."""

import os
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from gradcam import Explainer
from gradcam.errors import GradcamError
from tests import docs
from tests.helpers import ROOT, SHAPE_CLASSES, SHAPES, shapes_test_set


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(ROOT, build / "src", ignore=shutil.ignore_patterns(".venv", ".git", "output", "test-artifacts"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", out, build / "src"], check=True)
    [path] = out.glob("gradcam_block-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed into its own folder; the test environment provides the dependencies."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel], check=True)
    return site


def _run(command, cwd, site):
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_the_gradcam_package_and_its_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {n.split("/")[0] for n in names} == {"gradcam", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "gradcam/report/report.html" in names and "gradcam/cli.py" in names
    assert "gradcam-block = gradcam.cli:command" in entry_points


def test_the_command_does_what_main_py_does(installed, tmp_path):
    command = installed / "bin" / "gradcam-block"
    listed = _run([command, "--model", SHAPES / "model.h5", "--list-layers"], tmp_path, installed)
    expected = _run([sys.executable, "main.py", "--model", SHAPES / "model.h5", "--list-layers"], ROOT, installed)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == expected.stdout and "conv" in listed.stdout
    refused = _run([command, "--alpha", "3"], tmp_path, installed)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: argument --alpha: 3 is out of range")


def test_the_readme_python_example_runs_from_any_folder(installed, tmp_path):
    code = docs.python_example(docs.README.read_text())
    shutil.copy(SHAPES / "model.h5", tmp_path / "model.h5")
    images, labels, _boxes = shapes_test_set(grey=True)
    cv2.imwrite(str(tmp_path / "photo.jpg"), cv2.cvtColor(images[0], cv2.COLOR_RGB2BGR))
    result = _run([sys.executable, "-c", code], tmp_path, installed)
    assert result.returncode == 0, result.stderr
    label, _confidence, _peak = result.stdout.split(" ", 2)
    assert label == labels[0]
    overlay = cv2.imread(str(tmp_path / "overlay.jpg"))
    assert overlay.shape == images[0].shape


@pytest.fixture(scope="module")
def explainer():
    return Explainer.from_file(SHAPES / "model.h5", SHAPE_CLASSES, resize_mode="fit-short")


def test_explaining_no_images_gives_no_results(explainer):
    assert explainer.explain([]) == []


def test_grayscale_and_rgba_arrays_are_explained_as_their_rgb(explainer):
    images, _labels, _boxes = shapes_test_set(grey=True)
    gray = cv2.cvtColor(images[0], cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([images[1], np.full(images[1].shape[:2], 128, np.uint8)])
    got = explainer.explain([gray, gray[..., None], rgba])
    want = explainer.explain([np.dstack([gray] * 3), np.dstack([gray] * 3), images[1]])
    for g, w in zip(got, want, strict=True):
        assert g.label == w.label
        np.testing.assert_allclose(g.heatmap, w.heatmap, atol=1e-5)
        assert g.overlay().shape == w.image.shape


@pytest.mark.parametrize(
    ("image", "got"),
    [
        (np.zeros((8, 8, 3), np.float32), "float32 (8, 8, 3)"),
        (np.zeros((8, 8, 2), np.uint8), "uint8 (8, 8, 2)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "uint8 (2, 8, 8, 3)"),
    ],
)
def test_other_arrays_are_refused_in_one_line(explainer, image, got):
    with pytest.raises(GradcamError) as error:
        explainer.explain([np.zeros((8, 8, 3), np.uint8), image])
    assert str(error.value) == (
        f"image 1: expected a uint8 array of shape (H, W, 3) RGB, (H, W) grayscale or (H, W, 4) RGBA; got {got}"
    )
