"""The README's two pictures, from the bundled example as `make demo` explains it:
docs/example-panels.jpg (panels of three right answers and a mistake, `--layout panel`) and
docs/example-report.png (the report, opened in Chromium through Playwright).

    .venv/bin/python examples/readme_pictures.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.browser import chromium  # noqa: E402
from gradcam.cli import main  # noqa: E402

DEMO = ["--model", str(ROOT / "examples/shapes/model.h5"), "--dataset", str(ROOT / "examples/shapes/export.zip")]
DEMO += ["--resize-mode", "fit-short"]


def _run(out: Path, *flags: str) -> Path:
    if main([*DEMO, *flags, "--out", str(out)]) != 0:
        raise SystemExit(f"the demo job failed ({' '.join(flags)})")
    folder = out / "unzipped"
    with zipfile.ZipFile(out / "deploy.zip") as archive:
        archive.extractall(folder)
    return folder


def panels(folder: Path) -> np.ndarray:
    """One right answer per class, then the first mistake, stacked."""
    rows = json.loads((folder / "results.json").read_text())["results"]
    picked = [next(r for r in rows if r["correct"] and r["true_label"] == c) for c in ("circle", "square", "triangle")]
    picked.append(next(r for r in rows if r["correct"] is False))
    images = [cv2.imread(str(folder / r["overlay"])) for r in picked]
    width = max(image.shape[1] for image in images)
    padded = [
        cv2.copyMakeBorder(im, 0, 8, 0, width - im.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for im in images
    ]
    return np.concatenate(padded, axis=0)


def report_screenshot(folder: Path, path: Path) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((folder / "index.html").as_uri())
        page.wait_for_selector("body[data-ready]", state="attached")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(path))


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        panel_folder = _run(Path(tmp) / "panel", "--layout", "panel")
        cv2.imwrite(str(ROOT / "docs/example-panels.jpg"), panels(panel_folder), [cv2.IMWRITE_JPEG_QUALITY, 88])
        report_screenshot(_run(Path(tmp) / "blend"), ROOT / "docs/example-report.png")
    print("wrote docs/example-panels.jpg and docs/example-report.png")


if __name__ == "__main__":
    main_()
