"""Command line: flags -> Settings, each checked before TensorFlow loads; picks the source (Studio's
metadata, an API key, or a local model and dataset) and reports the run."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gradcam import stopping
from gradcam.choices import (
    AUTO,
    CATEGORIES,
    COLORS,
    CROP_ANCHORS,
    DEFAULT_HOST,
    EVIDENCE_CHECKS,
    EXPLAIN,
    INPUT_METHODS,
    INPUT_SCALINGS,
    LAYOUTS,
    MAX_BATCH,
    METHODS,
    NORMALIZATIONS,
    OCCLUSION,
    OVERLAYS,
    POOLINGS,
    RESIZE_METHODS,
    RESIZE_MODES,
)
from gradcam.errors import DATASET_EXPECTED, GradcamError, not_found
from gradcam.flag_values import bounded, class_names, shapes, switch
from gradcam.quiet import import_quietly
from gradcam.settings import Settings

log = logging.getLogger("gradcam")


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag reported as the job's other errors are: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(description="What an Edge Impulse model looks at (images, audio, motion), sample by sample.")
    src = p.add_argument_group("offline job (no network)")
    src.add_argument(
        "--model",
        type=Path,
        help="the model: Keras .h5 or .keras, TFLite (int8 or float32), a SavedModel folder, or a zip of one",
    )
    src.add_argument("--dataset", type=Path, help="Edge Impulse export zip, or its extracted folder")
    src.add_argument(
        "--features",
        type=Path,
        nargs="+",
        help="audio and other DSP models: the features Edge Impulse computed, X_testing.npy (the Dashboard's "
        '"Download block output"), in place of --dataset; several DSP blocks: one file each, in the impulse\'s order',
    )
    src.add_argument(
        "--dsp-block",
        help="with --features: the DSP blocks' types, + between several (mfe, mfcc, spectrogram): MFCC maps get "
        "Grad-CAM under --method auto (Studio and --api-key read them from the impulse)",
    )
    src.add_argument(
        "--feature-shapes",
        type=shapes,
        help="with several --features: each DSP block's frames x columns, in the same order (49x13,99x40)",
    )
    src.add_argument("--labels", type=Path, help="with --features: their labels, y_testing.npy")
    src.add_argument(
        "--axes", type=class_names, help="with --features of motion or sensor data: the axes, in order (accX,accY,accZ)"
    )
    src.add_argument(
        "--dsp-config",
        type=Path,
        help="with --features of motion or sensor data: the DSP block as JSON (deployment-metadata.json, or its "
        "parameters with type, axes, frequency and window_size_ms), to name each feature",
    )
    src.add_argument("--classes", type=class_names, help="class names in model output order, comma separated")
    src.add_argument(
        "--tflite",
        type=Path,
        help="the TFLite model (int8 or float32), explained beside the Keras model (Studio: its own)",
    )
    src.add_argument("--no-tflite", action="store_true", help="do not run the TFLite model, not even Studio's")
    src.add_argument("--explain", choices=EXPLAIN, default="both", help="with Keras and TFLite models: whose maps")
    p.add_argument("--out", type=Path, default=Path("output"), help="folder for deploy.zip (default: output)")
    p.add_argument("--category", choices=CATEGORIES, default="testing", help="which samples to explain")

    cam = p.add_argument_group("Grad-CAM")
    cam.add_argument(
        "--method",
        choices=(AUTO, *METHODS, OCCLUSION, *INPUT_METHODS),
        default=AUTO,
        help="auto (default): chosen per model on a sample of the job's own, against the model's own evidence: the "
        "sharpest gradient map that agrees with it, else occlusion (the evidence itself: each part of the input "
        "hidden in turn); integrated-gradients over the input features of a model without convolutions",
    )
    cam.add_argument(
        "--layer",
        default="auto",
        help="auto (default: the last conv, or where its map is coarse, finer layers fused with it), "
        "last-conv, or layer names to fuse, e.g. model/block_6_expand_relu,model/block_13_expand_relu",
    )
    cam.add_argument("--list-layers", action="store_true", help="print the layers --model can explain, then exit")
    cam.add_argument("--pooling-gradients", choices=POOLINGS, default="mean", help="Grad-CAM weights")
    cam.add_argument("--heatmap-normalization", choices=NORMALIZATIONS, default="percentile")
    cam.add_argument("--target-class", help="explain every image with respect to this class")
    cam.add_argument(
        "--alpha", type=bounded(float, 0, 1), default=0.4, help="heatmap strength in the overlay, 0..1 (default 0.4)"
    )
    cam.add_argument("--layout", choices=LAYOUTS, default="blend", help="blend, or original|heatmap|blend panel")
    cam.add_argument(
        "--overlays",
        choices=OVERLAYS,
        default="all",
        help="overlays for all samples (default), or for the mistakes and unlabeled samples only: a lighter "
        "deploy.zip for large test sets; results.csv and the report still cover every sample",
    )
    cam.add_argument(
        "--max-overlay-size",
        type=bounded(int, 0),
        default=1024,
        help="overlays at most this many pixels on the long side (default 1024; 0: the original size)",
    )
    cam.add_argument(
        "--regression-threshold", type=bounded(float, 0), default=0.1, help="max abs error counted correct"
    )
    cam.add_argument(
        "--detection-threshold",
        type=bounded(float, 0, 1),
        help="object detection (FOMO): a cell's minimum probability (default: the learn block's, else 0.5)",
    )
    cam.add_argument(
        "--faithfulness",
        type=switch,
        nargs="?",
        const=True,
        default=True,
        help="score how far each map can be trusted (two more forward passes per image; default on, 0: off)",
    )
    cam.add_argument(
        "--evidence",
        choices=EVIDENCE_CHECKS,
        default="budget",
        help="check each map against the model's own evidence (hiding each part of the input in turn): budget "
        "(default: every map while the checks at most double the job's time, else an evenly spread share), all, off",
    )
    cam.add_argument("--batch-size", type=bounded(int, 1, MAX_BATCH), default=32, help="images per model call")

    pre = p.add_argument_group("preprocessing (as the impulse's image block; default: from the impulse)")
    pre.add_argument("--resize-mode", choices=RESIZE_MODES, help="default squash")
    pre.add_argument("--resize-method", choices=RESIZE_METHODS, help="the resize kernel (libvips's), default lanczos3")
    pre.add_argument("--crop-anchor", choices=CROP_ANCHORS, help="where fit-short's crop sits, default middle-center")
    pre.add_argument("--color", choices=COLORS, help="colour depth (default: from the model's input)")
    pre.add_argument("--input-scaling", choices=INPUT_SCALINGS, help="default 0..1")

    studio = p.add_argument_group("Edge Impulse Studio")
    studio.add_argument("--metadata", type=Path, help="deployment-metadata.json (Studio runs the block with this)")
    studio.add_argument("--api-key", help="project API key, ei_... (or the EI_API_KEY environment variable)")
    studio.add_argument("--project-id", type=bounded(int, 1), help="default: the API key's project")
    studio.add_argument("--impulse-id", type=bounded(int, 1), help="default: the project's default impulse")
    studio.add_argument("--host", help=f"Studio host (default {DEFAULT_HOST})")
    studio.add_argument("--work-dir", type=Path, default=Path("gradcam-work"), help="downloads (with --api-key)")
    studio.add_argument("--skip-dataset-download", action="store_true", help="reuse the export in --work-dir")
    studio.add_argument(
        "--export-timeout",
        type=bounded(float, 0, low_open=True),
        default=1800.0,
        help="seconds to wait for the export",
    )
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


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags, each checked before any work starts; a bad one exits 2 with one line."""
    p = parser()
    args = p.parse_args(argv)
    for flag in ("out", "work_dir"):
        folder = getattr(args, flag)
        if folder.exists() and not folder.is_dir():
            p.error(f"argument --{flag.replace('_', '-')}: {folder} is a file; expected a folder")
    return args


def _missing(args: argparse.Namespace) -> str | None:
    """A file a flag names that is not there: found before TensorFlow loads (the modules say the
    same to Python API users)."""
    if args.model is not None and not args.model.exists():
        return not_found(args.model, "model file")
    if args.dataset is not None and not args.dataset.exists():
        return not_found(args.dataset, "dataset", DATASET_EXPECTED)
    named = [(path, "features file") for path in args.features or []] + [(args.labels, "labels file")]
    for path, what in named:
        if path is not None and not path.is_file():
            return not_found(path, what, "an .npy file")
    if args.dsp_block and not args.features:
        return "--dsp-block goes with --features (the types of the DSP blocks that computed them)"
    if args.feature_shapes and len(args.feature_shapes) != len(args.features or []):
        return (
            f"--feature-shapes gives {len(args.feature_shapes)} shapes for {len(args.features or [])} --features files"
        )
    if args.labels is not None and args.features is None:
        return "--labels goes with --features (the labels of its windows)"
    if (args.axes or args.dsp_config) and not args.features:
        return "--axes and --dsp-config go with --features (the motion or sensor features they describe)"
    if args.dsp_config is not None and not args.dsp_config.is_file():
        return not_found(args.dsp_config, "DSP config", "a JSON file")
    if args.tflite is not None and not args.tflite.is_file():
        return not_found(args.tflite, "TFLite model")
    if args.metadata is not None and not args.metadata.is_file():
        return not_found(args.metadata, "deployment metadata")
    return None


def command() -> NoReturn:
    """main.py and the gradcam-block command: the job, then an exit that skips the interpreter's
    teardown of TensorFlow's objects (about 1 s of the bundled example's 5). By then every file is
    closed and every log line is flushed."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    missing = _missing(args)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        with stopping.handled():
            return _main(settings_from(args))
    except GradcamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; deploy.zip not written", file=sys.stderr)
        return 130
    except stopping.Terminated:
        print("terminated; deploy.zip not written", file=sys.stderr)
        return 143


def _main(settings: Settings) -> int:
    if settings.list_layers:
        import_quietly()
        from gradcam.job.run import list_layers

        print(list_layers(settings))
        return 0
    log.info("loading TensorFlow")
    import_quietly()
    from gradcam.job.closing import log_summary

    log_summary(run(settings))
    return 0


def run(settings: Settings):
    """Pick the source: Studio's metadata, an API key, or a local model and dataset."""
    from gradcam.edge import sources
    from gradcam.job import run as job

    if settings.metadata:
        # Scratch work under the temporary folder, never on Studio's network-mounted folders.
        with tempfile.TemporaryDirectory(prefix="gradcam-") as work:
            return job.run(sources.from_block(settings, Path(work)))
    if settings.api_key and settings.model is None:
        return job.run(sources.from_api_key(settings))
    return job.run(sources.Source(settings))
