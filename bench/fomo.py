"""The FOMO row of make bench: the trained FOMO fixture on scenes of 1 to 3 shapes, the job against its
decode + preprocess + forward floor, and objects explained per second in the job's one batched pass
against one CAM pass per object."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from loops import bare_loop, end_to_end, stage_times

from gradcam.edge.dataset import open_dataset
from gradcam.engine.formats import load_model
from gradcam.explainer import Explainer
from tests.fixtures import make_fomo


def fomo_export(path: Path, n: int, seed: int = 3) -> Path:
    """n scenes of 1 to 3 shapes (128x128 JPEGs) with their boxes in info.labels, as an object
    detection project exports them."""
    images, boxes = make_fomo.scenes(n, seed)
    files = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i, (image, image_boxes) in enumerate(zip(images, boxes, strict=True)):
            name = f"testing/{i:05d}.jpg.abcdefgh.ingestion-1.jpg"
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            archive.writestr(name, cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
            files.append({"path": name, "category": "testing", "boundingBoxes": image_boxes})
        archive.writestr("info.labels", json.dumps({"version": 1, "files": files}))
    return path


def fomo_rates(export: Path, out: Path, batch: int) -> dict:
    """The FOMO fixture: the job against decode+preprocess+forward, and objects/s explained in the
    job's batched pass against one CAM pass per object."""
    classes = list(make_fomo.CLASSES)
    job, summary = end_to_end(make_fomo.OUT, export, out, batch, classes, "squash")
    floor = bare_loop(make_fomo.OUT, export, batch, classes, "squash")
    with zipfile.ZipFile(summary.zip_path) as archive:
        results = json.loads(archive.read("results.json"))["results"]
    objects, explained = sum(len(r["objects"]) for r in results), len(results)
    explainer = Explainer(load_model(make_fomo.OUT), classes)
    with open_dataset(export) as dataset:
        images = [
            cv2.cvtColor(cv2.imdecode(np.frombuffer(dataset.read(s), np.uint8), 1), cv2.COLOR_BGR2RGB)
            for s in dataset.samples[:batch]
        ]
    inputs, geometries = zip(*(explainer.prepare(image) for image in images), strict=True)
    frames = [explainer.frame((im.shape[1], im.shape[0]), g) for im, g in zip(images, geometries, strict=True)]
    plans = explainer.run_objects(np.stack(inputs), frames, [None] * len(images))
    targets = [(t.owner, t.mask(len(classes) + 1)) for plan, _, _ in plans for t in plan.targets]
    start = time.perf_counter()
    for owner, mask in targets:
        explainer.run(np.stack(inputs)[owner : owner + 1], mask[None])
    one_by_one = len(targets) / (time.perf_counter() - start)
    return {
        "job": job,
        "floor": floor,
        "objects_per_image": objects / explained,
        "job_objects": job * objects / explained,
        "one_by_one": one_by_one,
        "stages": stage_times(summary),
    }


def fomo_line(n: int, batch: int, tmp: Path) -> str:
    fomo = fomo_rates(fomo_export(tmp / "fomo.zip", n), tmp / "fomo-out", batch)
    return (
        f"FOMO (MobileNetV2 0.35 96x96, the trained test fixture; {n} scenes, "
        f"{fomo['objects_per_image']:.1f} objects explained per image): job {fomo['job']:.0f} img/s, "
        f"decode+preprocess+forward {fomo['floor']:.0f} img/s: ratio {fomo['job'] / fomo['floor']:.2f}; "
        f"{fomo['job_objects']:.0f} objects/s explained in the job against {fomo['one_by_one']:.0f} objects/s with "
        f"one CAM pass per object ({fomo['job_objects'] / fomo['one_by_one']:.1f}x). Stages: {fomo['stages']}."
    )
