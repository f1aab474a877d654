"""The job and its floor, timed in this process: images/s of a function, the bare decode + preprocess +
forward loop, and the whole offline job, warmed up the way it runs."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from common import CLASSES

from gradcam.edge.dataset import open_dataset
from gradcam.engine.formats import load_model
from gradcam.engine.tasks import Detection
from gradcam.explainer import Explainer
from gradcam.job.run import Job
from gradcam.settings import Settings


def rate(fn, images: int, min_seconds: float) -> float:
    """images/s of fn (which processes `images` images), after one warm-up call."""
    fn()
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return runs * images / elapsed


def decode(data: bytes, explainer: Explainer) -> np.ndarray:
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return explainer.prepare(image)[0]


def bare_loop(model_path: Path, export: Path, batch: int, classes=CLASSES, resize_mode: str = "fit-short") -> float:
    """decode + preprocess + forward, single thread, batched: the floor the job is compared with."""
    model = load_model(model_path)
    explainer = Explainer(model, classes, resize_mode=resize_mode)
    forward = tf.function(lambda t: model(t, training=False))
    with open_dataset(export) as dataset:
        samples = dataset.samples
        forward(tf.constant(np.zeros((batch, *(model.inputs[0].shape[1:])), np.float32)))  # warm-up

        def run():
            for i in range(0, len(samples), batch):
                x = np.stack([decode(dataset.read(s), explainer) for s in samples[i : i + batch]])
                forward(tf.constant(x.reshape(len(x), *model.inputs[0].shape[1:]))).numpy()

        start = time.perf_counter()
        run()
        return len(samples) / (time.perf_counter() - start)


def as_trained(export: Path, model_path: Path, path: Path, wrong: float = 0.1) -> Path:
    """A copy of the export labelled as a trained model would get it right: the model's own
    prediction, but for a `wrong` share of the images (every 1/wrong-th), which get another class.
    Each mistake's true class is explained too, so the mistakes' share drives the job's cost."""
    explainer = Explainer(load_model(model_path), CLASSES, resize_mode="fit-short")
    with open_dataset(export) as dataset, zipfile.ZipFile(export) as source:
        inputs = np.stack([decode(dataset.read(s), explainer) for s in dataset.samples])
        predicted = explainer.adapter.predict(inputs).argmax(axis=1)
        info = json.loads(source.read("info.labels"))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for i, (f, index) in enumerate(zip(info["files"], predicted, strict=True)):
                archive.writestr(f["path"], source.read(f["path"]))
                f["label"]["label"] = CLASSES[(index + (i % round(1 / wrong) == 0)) % len(CLASSES)]
            archive.writestr("info.labels", json.dumps(info))
    return path


def warm_up(explainer: Explainer, batch: int) -> None:
    """Trace the model's functions once, as the job does at its start: the CAM pass, and the pass
    that also explains mistakes for their true class."""
    x = np.zeros((batch, *explainer.adapter.image_shape), np.float32)
    if isinstance(explainer.task, Detection):
        grids = np.zeros((batch, *explainer.adapter.output_shape), np.float32)
        explainer.forward.predict(explainer.start(x))
        cams = explainer.cam(explainer.start(x), grids)
        if explainer.score_objects:
            explainer.score_objects(x, np.arange(batch, dtype=np.int32), cams.maps, cams.scores, grids)
    else:
        targets = np.full(batch, -1, np.int32)
        explainer.maps(x, targets)
        predicted = explainer.adapter.predict(x).argmax(axis=1)
        explainer.maps(x, targets, ((predicted + 1) % len(explainer.classes)).astype(np.int32))


def end_to_end(
    model_path: Path,
    export: Path,
    out: Path,
    batch: int,
    classes=CLASSES,
    resize_mode: str = "fit-short",
    faithfulness: bool = True,
    tflite: Path | None = None,
    explain: str = "both",
    **options,
):
    """The whole offline job (decode, preprocess, CAM, faithfulness if on, the TFLite model beside
    if given, with its own maps unless explain is "keras", overlay, encode, zip, report; options: any
    other Settings field): (images/s, summary)."""
    settings = Settings(
        model=model_path,
        dataset=export,
        out=out,
        batch_size=batch,
        resize_mode=resize_mode,
        faithfulness=faithfulness,
        tflite=tflite,
        explain=explain,
        **options,
    ).with_defaults()
    job = Job.build(load_model(model_path), settings, classes)
    for explainer in (job.explainer, job.tflite and job.tflite.twin):
        if explainer:
            warm_up(explainer, batch)
    with open_dataset(export) as dataset:
        n = len(dataset.samples)
        start = time.perf_counter()
        summary = job.run(dataset)
        return n / (time.perf_counter() - start), summary


def stage_times(summary) -> str:
    """The job's stage times as the tables give them."""
    return ", ".join(f"{k} {v:.1f}s" for k, v in summary.stage_times.items())
