"""One settings object: filled from the flags, deployment-metadata.json and the impulse."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gradcam.choices import AUTO


@dataclass
class Settings:
    """Everything a run needs. Defaults are the command line's defaults."""

    # Inputs and output.
    model: Path | None = None
    dataset: Path | None = None
    features: list[Path] | None = None  # audio and other DSP features: X_<category>.npy per DSP block, a row per window
    labels: Path | None = None  # their labels: y_<category>.npy
    feature_shapes: list[tuple[int, int]] | None = None  # each DSP block's (frames, columns); None: the model's Reshape
    dsp_block: str | None = None  # Studio: the types of the DSP blocks whose features the model reads (mfe, ...)
    axes: list[str] | None = None  # a flat block's axes (motion and sensors), in its order; None: from dsp_config
    dsp_config: Path | None = None  # a flat block's parameters: JSON (gradcam.edge.sensors.read_config)
    out: Path = Path("output")
    category: str = "testing"
    classes: list[str] | None = None
    # Grad-CAM.
    layer: str = "auto"  # auto, last-conv, or layer names to fuse (gradcam.engine.layers)
    method: str = AUTO  # auto: gradcam.engine.cam.auto_method (HiResCAM for audio maps over time and frequency)
    pooling_gradients: str = "mean"
    heatmap_normalization: str = "percentile"
    target_class: str | None = None
    alpha: float = 0.4
    layout: str = "blend"
    overlays: str = "all"  # all, or mistakes: overlays only for the mistakes and unlabeled samples
    max_overlay_size: int = 1024  # long side of the overlays in pixels; 0: the original size
    regression_threshold: float = 0.1
    detection_threshold: float | None = None  # FOMO: a cell's minimum probability; None: the learn block's, else 0.5
    faithfulness: bool = True  # score every map: two more forward passes per image (gradcam.engine.faithfulness)
    evidence: str = "budget"  # which maps are checked against the model's own evidence (gradcam.job.checks)
    batch_size: int = 32
    list_layers: bool = False  # print the explainable layers and exit
    # The TFLite model (int8 or float32) to compare with the Keras model on every sample.
    tflite: Path | None = None  # Studio: the mounted trained.tflite
    no_tflite: bool = False
    tflite_required: bool = True  # False in Studio mode: a bad trained.tflite is a warning, not an error
    explain: str = "both"  # both: each model's own maps; keras: the TFLite model's answers only; tflite: its maps alone
    # Preprocessing, as Edge Impulse's image block; None: from the impulse, else the default.
    resize_mode: str | None = None  # default squash
    resize_method: str | None = None  # default lanczos3, as Studio
    crop_anchor: str | None = None  # default middle-center
    color: str | None = None  # RGB / Grayscale; default: from the model's input channels
    input_scaling: str | None = None  # default 0..1
    image_shape: tuple[int, int, int] | None = None  # (height, width, channels) from the impulse
    # Studio.
    metadata: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    host: str | None = None
    project_id: int | None = None
    impulse_id: int | None = None
    work_dir: Path = Path("gradcam-work")
    skip_dataset_download: bool = False
    export_timeout: float = 1800.0

    @property
    def reads_features(self) -> bool:
        """The model takes windows of DSP features (audio), not images."""
        return self.features is not None or self.dsp_block is not None

    @property
    def zip_path(self) -> Path:
        return self.out / "deploy.zip"

    def with_defaults(self) -> Settings:
        """Preprocessing options that neither a flag nor the impulse set take their defaults."""
        return replace(
            self,
            resize_mode=self.resize_mode or "squash",
            resize_method=self.resize_method or "lanczos3",
            crop_anchor=self.crop_anchor or "middle-center",
            input_scaling=self.input_scaling or "0..1",
            detection_threshold=self.detection_threshold if self.detection_threshold is not None else 0.5,
        )

    def explainer_options(self) -> dict:
        """Keyword arguments for `Explainer`."""
        return {
            "layer": self.layer,
            "method": self.method,
            "pooling": self.pooling_gradients,
            "normalization": self.heatmap_normalization,
            "resize_mode": self.resize_mode,
            "resize_method": self.resize_method,
            "crop_anchor": self.crop_anchor,
            "grayscale": None if self.color is None else self.color == "Grayscale",
            "input_scaling": self.input_scaling,
            "impulse_shape": self.image_shape,
            "faithfulness": self.faithfulness,
            "fill": "background" if self.reads_features else "blur",
            "blocks": self.feature_shapes,
            "reads_features": self.reads_features,
            "dsp": self.dsp_block,
        }

    def parameters(self) -> dict:
        """The options that shape the result, for the report."""
        keys = [
            "category",
            "layer",
            "method",
            "pooling_gradients",
            "heatmap_normalization",
            "target_class",
            "alpha",
            "layout",
            "overlays",
            "max_overlay_size",
            "regression_threshold",
            "detection_threshold",
            "faithfulness",
            "evidence",
            "explain",
            "resize_mode",
            "resize_method",
            "crop_anchor",
            "color",
            "input_scaling",
            "batch_size",
        ]
        return {k: getattr(self, k) for k in keys}
