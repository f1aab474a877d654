"""The install a new user gets (make test-install): a fresh venv, `pip install .` and nothing else,
so pip picks the newest versions pyproject.toml allows, not the pins of requirements.txt.

In it, the `gradcam-block` command runs the bundled example end to end and the README's Python
example runs. Both are held to the same job in the test environment (the pinned versions): the
same answers, the same folders, and pictures that look the same (PSNR >= 40 dB). The versions pip
resolved are written to test-artifacts/fresh-install.txt. Needs the package registry (pip's cache
is reused); it is its own CI step, outside make test's 10 minutes.
"""

import json
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from tests import docs
from tests.helpers import ROOT, SHAPES, shapes_test_set

pytestmark = [pytest.mark.fresh_install, pytest.mark.timeout(1800)]
REPORT = ROOT / "test-artifacts" / "fresh-install.txt"
DEPENDENCIES = ("tensorflow", "tf-keras", "keras", "opencv-python-headless", "numpy", "ai-edge-litert")
DEMO = ["--model", SHAPES / "model.h5", "--dataset", SHAPES / "export.zip", "--resize-mode", "fit-short"]


def _run(command, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A new venv with only `pip install .` in it; its bin/ folder."""
    base = tmp_path_factory.mktemp("fresh")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "output", "test-artifacts"))
    made = _run([sys._base_executable, "-m", "venv", base / "venv"], base)
    assert made.returncode == 0, made.stderr
    bin_ = base / "venv" / "bin"
    installed = _run([bin_ / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q", source], base, 1500)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = json.loads(_run([bin_ / "python", "-m", "pip", "list", "--format", "json"], base).stdout)
    versions = {p["name"].lower().replace("_", "-"): p["version"] for p in listed}
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("".join(f"{name} {versions.get(name, 'not installed')}\n" for name in DEPENDENCIES))
    return bin_, versions


def test_pip_resolves_opencv_5_not_the_pinned_4(venv):
    _bin, versions = venv
    assert int(versions["opencv-python-headless"].split(".")[0]) >= 5, versions["opencv-python-headless"]


def _pictures(zip_path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(zip_path) as archive:
        return {
            n: cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_COLOR)
            for n in archive.namelist()
            if n.endswith(".jpg")
        }


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_the_command_runs_the_bundled_example_as_the_pinned_install_does(venv, tmp_path):
    bin_, _versions = venv
    fresh = _run([bin_ / "gradcam-block", *DEMO, "--out", tmp_path / "fresh"], tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stderr == "", "only the job's own lines: no native library's start-up chatter"
    assert "wrote " in fresh.stdout
    pinned = _run([sys.executable, ROOT / "main.py", *DEMO, "--out", tmp_path / "pinned"], ROOT)
    assert pinned.returncode == 0, pinned.stderr

    results = {}
    for name in ("fresh", "pinned"):
        with zipfile.ZipFile(tmp_path / name / "deploy.zip") as archive:
            rows = json.loads(archive.read("results.json"))["results"]
        results[name] = {r["source"]: (r["predicted"], r["correct"], r["overlay"]) for r in rows}
    assert len(results["fresh"]) == 120
    assert results["fresh"] == results["pinned"]

    fresh_pictures, pinned_pictures = (
        _pictures(tmp_path / "fresh" / "deploy.zip"),
        _pictures(tmp_path / "pinned" / "deploy.zip"),
    )
    assert sorted(fresh_pictures) == sorted(pinned_pictures)
    worst = min(_psnr(fresh_pictures[n], pinned_pictures[n]) for n in fresh_pictures)
    assert worst >= 40, f"a picture differs from the pinned install's: PSNR {worst:.1f} dB"
    with REPORT.open("a") as report:
        report.write(f"pictures against the pinned install: {len(fresh_pictures)}, lowest PSNR {worst:.1f} dB\n")


def test_the_readme_python_example_runs(venv, tmp_path):
    bin_, _versions = venv
    shutil.copy(SHAPES / "model.h5", tmp_path / "model.h5")
    images, labels, _boxes = shapes_test_set(grey=True)
    cv2.imwrite(str(tmp_path / "photo.jpg"), cv2.cvtColor(images[0], cv2.COLOR_RGB2BGR))
    result = _run([bin_ / "python", "-c", docs.python_example(docs.README.read_text())], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1)[0] == labels[0]
    assert cv2.imread(str(tmp_path / "overlay.jpg")).shape == images[0].shape
