"""Command line: flags -> Settings; picks the source (offline model and dataset, for now)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gradcam.errors import GradcamError
from gradcam.settings import Settings

log = logging.getLogger("gradcam")

# Choices and the host are repeated here (not imported) so that --help needs no TensorFlow or API
# client; tests check they match.
DEFAULT_HOST = "studio.edgeimpulse.com"
METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")
POOLINGS = ("mean", "sum_abs")
NORMALIZATIONS = ("percentile", "simple")
RESIZE_MODES = ("squash", "fit-short", "fit-long", "crop")
COLORS = ("RGB", "Grayscale")
INPUT_SCALINGS = ("0..1", "-1..1", "-128..127", "0..255", "torch", "bgr-subtract-imagenet-mean")
CATEGORIES = ("testing", "training", "all")
LAYOUTS = ("blend", "panel")


def _classes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="main.py",
        description="Grad-CAM for Edge Impulse image models: explain every test image, write deploy.zip.",
    )
    src = p.add_argument_group("offline job (no network)")
    src.add_argument("--model", type=Path, help="Keras model: .h5, .keras, or a zip holding model.h5")
    src.add_argument("--dataset", type=Path, help="Edge Impulse export zip, or its extracted folder")
    src.add_argument("--classes", type=_classes, help="class names in model output order, comma separated")
    p.add_argument("--out", type=Path, default=Path("output"), help="folder for deploy.zip (default: output)")
    p.add_argument("--category", choices=CATEGORIES, default="testing", help="which samples to explain")

    cam = p.add_argument_group("Grad-CAM")
    cam.add_argument("--method", choices=METHODS, default="gradcam")
    cam.add_argument(
        "--layer",
        default="auto",
        help="auto (default: the last conv, or where its map is coarse, finer layers fused with it), "
        "last-conv, or layer names to fuse, e.g. model/block_6_expand_relu,model/block_13_expand_relu",
    )
    cam.add_argument(
        "--list-layers", action="store_true", help="print the layers that can be explained (of --model), then exit"
    )
    cam.add_argument("--pooling-gradients", choices=POOLINGS, default="mean", help="Grad-CAM weights")
    cam.add_argument("--heatmap-normalization", choices=NORMALIZATIONS, default="percentile")
    cam.add_argument("--target-class", help="explain every image with respect to this class")
    cam.add_argument("--alpha", type=float, default=0.4, help="heatmap strength in the overlay (default 0.4)")
    cam.add_argument("--layout", choices=LAYOUTS, default="blend", help="blend, or original|heatmap|blend panel")
    cam.add_argument("--regression-threshold", type=float, default=0.1, help="max abs error counted correct")
    cam.add_argument("--batch-size", type=int, default=32)

    pre = p.add_argument_group("preprocessing (as the impulse's image block; default: from the impulse)")
    pre.add_argument("--resize-mode", choices=RESIZE_MODES, help="default squash")
    pre.add_argument("--color", choices=COLORS, help="colour depth (default: from the model's input)")
    pre.add_argument("--input-scaling", choices=INPUT_SCALINGS, help="default 0..1")

    studio = p.add_argument_group("Edge Impulse Studio")
    studio.add_argument("--metadata", type=Path, help="deployment-metadata.json (Studio runs the block with this)")
    studio.add_argument("--api-key", help="project API key, ei_... (or the EI_API_KEY environment variable)")
    studio.add_argument("--project-id", type=int, help="default: the API key's project")
    studio.add_argument("--impulse-id", type=int, help="default: the project's default impulse")
    studio.add_argument("--host", help=f"Studio host (default {DEFAULT_HOST})")
    studio.add_argument("--work-dir", type=Path, default=Path("gradcam-work"), help="downloads (with --api-key)")
    studio.add_argument("--skip-dataset-download", action="store_true", help="reuse the export in --work-dir")
    studio.add_argument("--export-timeout", type=float, default=1800.0, help="seconds to wait for the export")
    return p


def _optional(text: str | None) -> str | None:
    """Studio passes an empty optional string parameter as ""; it means "not set"."""
    return text.strip() or None if text is not None else None


def settings_from(args: argparse.Namespace) -> Settings:
    """Each flag fills the settings field of the same name (a test checks that every flag has one)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if hasattr(args, f.name)}
    values.update(
        layer=_optional(args.layer) or "auto",
        target_class=_optional(args.target_class),
        api_key=args.api_key or os.environ.get("EI_API_KEY") or None,
    )
    return Settings(**values)


def _import_quietly() -> None:
    """Import TensorFlow and Keras with their C++ start-up chatter (absl, oneDNN notices) kept off
    stderr, which is for our one-line errors; replayed if the import itself fails."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
            import tf_keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _report(summary) -> None:
    labelled = summary.count("correct") + summary.count("incorrect")
    accuracy = f", accuracy {summary.count('correct') / labelled:.1%}" if labelled else ""
    log.info(
        "done: %d correct, %d incorrect, %d unlabeled, %d skipped%s",
        summary.count("correct"),
        summary.count("incorrect"),
        summary.count("unlabeled"),
        len(summary.skipped),
        accuracy,
    )
    for source, reason in summary.skipped:
        log.info("skipped %s: %s", source, reason)
    log.info("stage times: %s", ", ".join(f"{k} {v:.1f}s" for k, v in summary.stages.items()))
    log.info("wrote %s", summary.zip_path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    _import_quietly()
    settings = settings_from(args)
    try:
        if settings.list_layers:
            print(list_layers(settings))
        else:
            _report(run(settings))
    except GradcamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def list_layers(settings: Settings) -> str:
    """The table that --list-layers prints: for --model, or the model mounted beside --metadata."""
    from gradcam import layers
    from gradcam.block import read_metadata
    from gradcam.model import input_image_shape, load_model

    path, impulse_shape = settings.model, settings.image_shape
    if path is None and settings.metadata:
        meta = read_metadata(settings.metadata)
        path, impulse_shape = meta.model_zip, meta.image_shape
    if path is None:
        raise GradcamError("--list-layers needs --model (or --metadata with the model in its input folder)")
    model = load_model(path)
    height = input_image_shape(model, impulse_shape)[0][0]
    return f"{path}: layers with a 2-D output (* = explained by --layer auto)\n" + layers.describe(model, height)


def run(settings: Settings):
    """Pick the source: Studio's metadata, an API key, or a local model and dataset."""
    from gradcam import pipeline, sources

    if settings.metadata:
        # Scratch work under the temporary folder, never on Studio's network-mounted folders.
        with tempfile.TemporaryDirectory(prefix="gradcam-") as work:
            return pipeline.run(sources.from_block(settings, Path(work)))
    if settings.api_key and settings.model is None:
        return pipeline.run(sources.from_api_key(settings))
    return pipeline.run(settings)
