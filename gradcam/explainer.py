"""The public Python API: build an explainer from a model once, call it on batches of images.

from gradcam import Explainer
explainer = Explainer.from_file("model.h5", classes=["circle", "square", "triangle"])
for result in explainer.explain(images):        # uint8 arrays of any size: RGB, grayscale or RGBA
    result.label, result.confidence, result.heatmap, result.overlay

Given the true labels, a mistake also gets its true class's map; every map gets its faithfulness
(faithfulness=False turns it off), and `check` its agreement with the model's own evidence.
    for result in explainer.explain(images, labels=["circle", ...]):
        result.faithfulness, result.contrast and result.contrast.heatmap   # contrast: None if correct

A FOMO model's explainer gives, per image, every detection and every missed box with its map:
    for result in explainer.detect(images, boxes):  # boxes: lists of gradcam.Box, or None
        result.counts, [(o.label, o.kind, o.peak_in_box, o.faithfulness) for o in result.objects]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gradcam.choices import AUTO, OCCLUSION
from gradcam.engine import detection, faithfulness
from gradcam.engine.attribution import scaled
from gradcam.engine.cam import CamBatch, auto_method, layer_methods, make_cam
from gradcam.engine.detection import ObjectMaps
from gradcam.engine.faithfulness import fill_for
from gradcam.engine.faithfulness import scorer as faithfulness_scorer
from gradcam.engine.fomo import DEFAULT_THRESHOLD, Box
from gradcam.engine.formats import adapter_for, load_model
from gradcam.engine.maps import normalize, peak
from gradcam.engine.objects import detect, explain_objects
from gradcam.engine.occlusion import Evidence, Occlusion
from gradcam.engine.parts import groups, parts_for
from gradcam.engine.preprocess import Geometry, ImageSpec, as_rgb, display_image, preprocess
from gradcam.engine.tasks import Answer, Detection, Task
from gradcam.errors import GradcamError
from gradcam.explanation import Explanation, SampleMaps


class Explainer:
    """Preprocessing, model and CAM method together, traced once and reused for every batch."""

    def __init__(
        self,
        model,
        classes: Sequence[str] | None = None,
        *,
        layer: str = "auto",
        method: str = AUTO,
        pooling: str = "mean",
        normalization: str = "percentile",
        resize_mode: str = "squash",
        resize_method: str = "lanczos3",
        crop_anchor: str = "middle-center",
        grayscale: bool | None = None,
        input_scaling: str = "0..1",
        impulse_shape: tuple[int, int, int] | None = None,
        faithfulness: bool = True,
        fill: str = "blur",
        blocks: Sequence[tuple[int, int]] | None = None,
        reads_features: bool = False,
        dsp: str | None = None,
        baseline: np.ndarray | None = None,
        references: np.ndarray | None = None,
    ):
        """faithfulness: score every map (gradcam.engine.faithfulness). fill: what its deletions and the
        model's own evidence (gradcam.engine.occlusion) put in place of a region: blur (images), background
        (audio; blocks: each DSP block's (frames, columns) side by side). method auto: `auto_method`'s rule
        for images or (reads_features) windows of features of the DSP blocks dsp names ("+" between
        several); the job settles it per model (gradcam.engine.calibration). A model without convolutions
        is explained at its input (gradcam.engine.attribution) from `references`, windows of the data
        (None: the baseline), or from `baseline` (None: zero), which faithfulness deletes to."""
        self.adapter = adapter_for(model, layer, impulse_shape)
        self.impulse_shape = impulse_shape
        height, width, channels = self.adapter.image_shape
        grayscale = channels == 1 if grayscale is None else grayscale
        if (1 if grayscale else 3) != channels:
            raise GradcamError(
                f"colour depth {'Grayscale' if grayscale else 'RGB'} does not match the model input "
                f"with {channels} channel(s)"
            )
        self.spec = ImageSpec(width, height, grayscale, resize_mode, input_scaling, resize_method, crop_anchor)
        self.classes = self.task.class_names(classes, self.adapter.num_outputs)
        objects = isinstance(self.task, Detection)  # several per image, each scored apart
        path = self.adapter.path
        if method == AUTO:
            two_d = self.adapter.layers[0].width > 1
            cepstra = dsp is not None and set(dsp.split("+")) == {"mfcc"}
            method = auto_method(reads_features, two_d, cepstra, inputs=path is not None)
        if path is not None:
            path.set_baseline(baseline)
            path.set_references(path.baseline.numpy()[None] if references is None else references)
            self.fill = path.fill
        else:
            self.fill = fill_for(fill, blocks)
        self.evidence = None  # the reference of every map, and a method; a flat vector's parts: use_groups
        if path is None:
            self.evidence = Evidence(
                self.adapter, self.task, parts_for(self.adapter.image_shape, reads_features, blocks, dsp), self.fill
            )
        # FOMO's layers below the shallowest explained one run once per image, the rest once per object.
        self._cut = self.adapter.cut() if objects and method != OCCLUSION else None
        self.forward = self._cut or self.adapter
        if method == OCCLUSION:
            self.cam = Occlusion(self.adapter, self.evidence, faithfulness and not objects)
        else:
            self.cam = make_cam(self.forward, method, pooling, faithfulness and not objects, self.fill)
        self.score_objects = faithfulness_scorer(self.adapter) if faithfulness and objects else None
        self.method, self.normalization = method, normalization

    @classmethod
    def from_file(cls, path: str | Path, classes: Sequence[str] | None = None, **options) -> Explainer:
        return cls(load_model(path), classes, **options)  # the model loaded by its content

    @property
    def task(self) -> Task:
        """What the model's output means (classification, binary, regression)."""
        return self.adapter.task

    @property
    def layer_name(self) -> str:
        """The explained layers, deepest first, comma separated; `input` for occlusion."""
        return "input" if self.method == OCCLUSION else self.adapter.layer_name

    def layers(self) -> list[dict]:
        """The explained layers, deepest first: name, type, output size and the method used on each;
        for occlusion, the input and its map's cells."""
        if self.method == OCCLUSION:
            return [
                {"name": "input", "type": "Input", "size": "x".join(map(str, self.resolution)), "method": OCCLUSION}
            ]
        methods = layer_methods(self.method, len(self.adapter.layers))
        return [
            {"name": layer.name, "type": layer.kind, "size": layer.size, "method": method}
            for layer, method in zip(self.adapter.layers, methods, strict=True)
        ]

    def use_groups(self, index: np.ndarray) -> None:
        """A flat vector's feature groups (each feature's, -1: none): the parts its evidence hides."""
        self.evidence = Evidence(self.adapter, self.task, groups(index), self.fill)

    def last_conv(self) -> dict:
        """The model's last convolution, explained or not: name and output size (empty: it has none)."""
        layer = self.adapter.last_conv
        return {"name": layer.name, "size": layer.size} if layer else {}

    @property
    def resolution(self) -> tuple[int, int]:
        """(height, width) of the explained map: the finest explained layer's; occlusion's cells."""
        if self.method == OCCLUSION:
            return self.evidence.parts.shape
        return max((layer.height, layer.width) for layer in self.adapter.layers)

    def target_index(self, label: str | None) -> int:
        """The class index to explain for `label` (None: the predicted class)."""
        return self.task.target_index(label, self.classes)

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """RGB uint8 image -> (model input, geometry). Thread-safe: OpenCV and NumPy only."""
        return preprocess(image, self.spec)

    def run(self, inputs: np.ndarray, targets: np.ndarray | None = None, owners: np.ndarray | None = None):
        """Preprocessed batch -> CamBatch with maps normalised to 0..1, one per target (see BaseCAM)."""
        return self.normalised(self.cam(self.start(inputs), targets, owners))

    def start(self, inputs: np.ndarray) -> np.ndarray:
        """What the CAM pass takes for a preprocessed batch: the batch itself, or for a model cut at
        its shallowest explained layer (FOMO), that layer's output."""
        return inputs if self._cut is None else self._cut.start(inputs)

    def normalised(self, batch: CamBatch) -> CamBatch:
        """The batch with its maps scaled to 0..1 (--heatmap-normalization)."""
        batch.maps[...] = self._scale(batch.maps)
        return batch

    def _scale(self, maps: np.ndarray) -> np.ndarray:
        """Maps scaled to 0..1 (--heatmap-normalization); a model's input attributions to -1..1."""
        return scaled(maps) if self.adapter.path is not None else normalize(maps, self.normalization)

    def maps(self, inputs: np.ndarray, targets: np.ndarray, truths: np.ndarray | None = None) -> list[SampleMaps]:
        """Preprocessed batch -> per image its map of the target class (PREDICTED: the prediction),
        scored for faithfulness if on, and where the model misses the true class in `truths`
        (class indices, -1: none) its contrast map: one CAM pass, two forward passes."""
        batch = self.cam(inputs, targets, truths=truths)
        explained = self.task.explained_classes(batch.probabilities, targets)
        names = self.task.score_names(self.classes)
        for maps in (batch.maps, batch.contrasts):
            maps[...] = self._scale(maps)
        out = []
        for i, probabilities in enumerate(batch.probabilities):
            trust = faithfulness.given(batch.faithfulness[i]) if len(batch.faithfulness) else None
            contrast, contrast_trust = batch.contrast(i) or (None, None)
            contrast_class = None if contrast is None else names[truths[i]]
            maps = (batch.maps[i], probabilities, names[explained[i]], trust, contrast, contrast_class)
            out.append(SampleMaps(*maps, faithfulness.given(contrast_trust)))
        return out

    def check(self, inputs: np.ndarray, maps: list[SampleMaps]) -> list[SampleMaps]:
        """The maps of a preprocessed batch, each with its agreement with the model's own evidence and
        its contrast map's (gradcam.engine.occlusion); as they are for occlusion's, which are that evidence."""
        if self.evidence is None or self.method == OCCLUSION:
            return maps
        return self.evidence.check(self.task.score_names(self.classes), inputs, maps)

    def known(self, inputs: np.ndarray) -> np.ndarray:
        """Which of a preprocessed batch's maps `check` at no cost (bool): their evidence is taken (auto's sample)."""
        checked = self.evidence is not None and self.method != OCCLUSION
        return self.evidence.known(inputs) if checked else np.zeros(len(inputs), bool)

    def frame(self, image_size: tuple[int, int], geometry: Geometry, original: tuple[int, int] | None = None):
        """Where the model's output grid lies in an image of this (width, height) (FOMO)."""
        grid = self.adapter.output_shape[:2]
        model_size = (self.spec.width, self.spec.height)
        return detection.Frame(geometry, model_size, grid, image_size, original or image_size)

    def run_objects(
        self,
        inputs: np.ndarray,
        frames: Sequence[detection.Frame],
        boxes: Sequence[Sequence[Box] | None],
        threshold: float = DEFAULT_THRESHOLD,
        plans: Sequence[detection.Plan] | None = None,
    ) -> list[ObjectMaps]:
        """FOMO: a preprocessed batch -> per sample, its detections and missed boxes (the plan; or
        those of `plans`, another model's), their normalised maps and faithfulness: a forward pass
        to decode, then one CAM pass for all objects."""
        return explain_objects(self, inputs, frames, boxes, threshold, plans)

    def detect(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Box] | None] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[detection.DetectionExplanation]:
        """FOMO: explain every detection in uint8 images and, where boxes are given (in the
        images' pixels), every box the model missed."""
        return detect(self, images, boxes, threshold)

    def answer(self, outputs: np.ndarray) -> Answer:
        """One sample's model outputs (after the activation) -> prediction, label, confidence, scores."""
        return self.task.answer(outputs, self.classes)

    def finish(
        self,
        image: np.ndarray,
        geometry: Geometry,
        maps: SampleMaps,
        heatmap: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Explanation:
        """Put one image's maps back on the original image. Thread-safe. heatmap: how a map lies on
        `image`, which is then shown as it is (windows of features: their picture's panels); by
        default through the geometry, on the image as the model saw its colours."""
        answer = self.answer(maps.probabilities)
        size, model_size = (image.shape[1], image.shape[0]), (self.spec.width, self.spec.height)
        shown = image
        if heatmap is None:
            shown = display_image(image, self.spec)

            def heatmap(cam: np.ndarray) -> np.ndarray:
                return geometry.to_original(cam, size, model_size)

        def explanation(cam: np.ndarray, explained: str, **more) -> Explanation:
            centre = peak(cam)
            hottest = None if centre is None else geometry.point_to_original(centre, cam.shape, model_size)
            fields = (answer.prediction, answer.label, answer.confidence, answer.scores, cam, heatmap(cam), shown)
            return Explanation(*fields, geometry.valid, hottest, explained, **more)

        checks = {"faithfulness": maps.contrast_faithfulness, "evidence": maps.contrast_evidence}
        contrast = None if maps.contrast is None else explanation(maps.contrast, maps.contrast_class, **checks)
        return explanation(
            maps.cam, maps.explained, faithfulness=maps.faithfulness, evidence=maps.evidence, contrast=contrast
        )

    def explain(
        self,
        images: Sequence[np.ndarray],
        target_class: str | None = None,
        labels: Sequence[str | None] | None = None,
    ) -> list[Explanation]:
        """Explain uint8 images of any size (RGB; grayscale and RGBA as `as_rgb` says), each with
        respect to its predicted class or `target_class`; given the images' true `labels`, a mistake
        also gets its true class's map (`contrast`)."""
        if isinstance(self.task, Detection):
            raise GradcamError("this is an object detection (FOMO) model: explain its objects with detect()")
        images = [as_rgb(image, f"image {i}") for i, image in enumerate(images)]
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        inputs = np.stack([x for x, _ in prepared])
        targets = np.full(len(images), self.target_index(target_class), dtype=np.int32)
        truths = np.array([self.task.truth(label, self.classes) for label in labels or [None] * len(images)], np.int32)
        maps = self.maps(inputs, targets, truths)
        return [
            self.finish(image, geometry, sample)
            for image, (_, geometry), sample in zip(images, prepared, maps, strict=True)
        ]
