"""What the benchmark scripts share: the generated export, and a job's peak memory in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["a", "b", "c"]


def make_export(path: Path, n: int, seed: int = 0, size: tuple[int, int] = (320, 240)) -> Path:
    """n JPEGs of size (width, height) with smooth random content, labelled in info.labels."""
    rng = np.random.default_rng(seed)
    files = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(n):
            coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            image = cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)
            name = f"testing/{i:05d}.jpg.abcdefgh.ingestion-1.jpg"
            archive.writestr(name, cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
            files.append({"path": name, "category": "testing", "label": {"type": "label", "label": CLASSES[i % 3]}})
        archive.writestr("info.labels", json.dumps({"version": 1, "files": files}))
    return path


def peak_rss(model_path: Path, export: Path, out: Path, *flags: str) -> tuple[float, float]:
    """Peak resident memory (MiB) and wall seconds (start-up included) of the offline job on
    `export`, in a fresh process. Its VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    forking parent (this benchmark, large by then) across exec."""
    argv = ["--model", str(model_path), "--dataset", str(export), "--resize-mode", "fit-short", "--out", str(out)]
    code = (
        "import re, sys; from gradcam.cli import main; "
        f"code = main({[*argv, *flags]!r}); "
        "print('RSS', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(code)"
    )
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    kib = int(next(line for line in result.stdout.splitlines() if line.startswith("RSS")).split()[1])
    return kib / 1024, seconds
