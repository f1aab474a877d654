"""What a model's output means: one small object per task.

A task says which score Grad-CAM explains (its target) and which class names it needs; a task with
one answer per sample (`SampleTask`) also says how the model's outputs read as an answer and how an
answer is judged against a sample's label or compared with another model's. As pytorch-grad-cam
keeps its model targets apart from the CAM maths, the model adapter picks the task from the last
layer and the rest of the code asks it; the job picks its stages from it once (gradcam.job.kinds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gradcam.errors import GradcamError, listed, with_article

PREDICTED = -1  # target index meaning "the class the model predicts"
NEIGHBOURHOOD = 2  # a FOMO object's faithfulness deletes pixels within this many cells of its own


@dataclass(frozen=True)
class Answer:
    """What the model said about one image."""

    prediction: int | float  # class index; regression: the value
    label: str  # the predicted class name; regression: the value as text
    confidence: float  # probability of the prediction; regression: nan
    scores: np.ndarray  # probability per class; regression: the raw output


class Task:
    """What every task has: the score a map explains (its target), and the class names it needs."""

    name: str
    activation: Callable[[tf.Tensor], tf.Tensor]  # logits -> the model's outputs
    signed = True  # deleting what a map highlights should lower its evidence (a value may move either way)

    def target_spec(self, output_shape: tuple[int, ...]) -> tf.TensorSpec:
        """What `target` takes per explained map: a class index (PREDICTED: the prediction)."""
        return tf.TensorSpec((None,), tf.int32)

    def class_names(self, classes: Sequence[str] | None, outputs: int) -> list[str]:
        """The class names in output order: given ones checked against the outputs, or "0", "1", ..."""
        expected = self._classes(outputs)
        names = list(classes) if classes else [str(i) for i in range(expected)]
        if len(names) != expected:
            raise GradcamError(
                f"{len(names)} class names ({listed(names)}) for {with_article(self.name)} model with {expected} "
                "outputs; give the class names in model output order (--classes a,b,c)"
            )
        return names

    def _classes(self, outputs: int) -> int:
        return outputs

    def target_index(self, label: str | None, classes: list[str]) -> int:
        """The class index to explain for `label` (None: the predicted class)."""
        if label is None:
            return PREDICTED
        if label not in classes:
            raise GradcamError(f"target class {label!r}: the model's classes are {', '.join(classes)}")
        return classes.index(label)

    def target(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """y^c per sample, before the activation."""
        raise NotImplementedError

    def evidence(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """In the CAM pass: each map's evidence for its target, its score before saturation."""
        raise NotImplementedError

    def attributed(self, logits: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
        """What an input attribution explains along its path (gradcam.engine.attribution), upstream
        being the explained target's gradient with respect to the logits: the target itself."""
        return tf.reduce_sum(upstream * logits, axis=-1)

    def region(self, targets: tf.Tensor) -> tf.Tensor | None:
        """Where a map's faithfulness deletes pixels, (N, h, w) at any resolution; None: everywhere."""
        return None

    def unknown_labels(self, labels: list[str], classes: list[str]) -> list[str]:
        """Labels that can never be judged correct: not among the classes."""
        return [label for label in labels if label not in classes]

    def labels_of(self, sample) -> list[str]:
        """The labels a dataset sample (gradcam.edge.dataset.Sample) is judged by."""
        return [] if sample.label is None else [sample.label]


class SampleTask(Task):
    """A task with one answer per sample (classification, binary, regression): how the outputs read
    as an answer, how an answer is judged against a label or compared with another model's, and
    how a map's faithfulness is scored on it."""

    classifies = True  # the answers are classes: a mistake has a true class, whose map it gets too

    def predicted(self, logits: tf.Tensor) -> tf.Tensor:
        """In the CAM pass: the predicted class index per sample."""
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def target(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """y^c per sample, before the activation: the target class's logit (PREDICTED: the prediction's)."""
        return tf.gather(logits, tf.where(targets >= 0, targets, self.predicted(logits)), batch_dims=1)

    def evidence(self, logits: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        """Each sample's log-odds for a class, log p / (1 - p) = z_c - logsumexp(z_j, j != c)."""
        others = tf.where(tf.one_hot(classes, tf.shape(logits)[1]) > 0, -np.inf, logits)
        return tf.gather(logits, classes, batch_dims=1) - tf.reduce_logsumexp(others, axis=1)

    def mistaken(self, logits: tf.Tensor, truths: tf.Tensor) -> tf.Tensor:
        """In the CAM pass: whether the model's answer misses each map's true class (-1: none)."""
        return (truths >= 0) & (truths != self.predicted(logits))

    def truth(self, label: str | None, classes: list[str]) -> int:
        """The class index of a sample's label, whose map a mistake gets; -1: none (unlabeled, unknown)."""
        return classes.index(label) if self.classifies and label in classes else -1

    def answer(self, outputs: np.ndarray, classes: list[str]) -> Answer:
        """One sample's outputs (after the activation) -> its answer."""
        index = int(np.argmax(outputs))
        return Answer(index, classes[index], float(outputs[index]), outputs)

    def class_probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Outputs (N, outputs) -> a probability per class (N, classes); regression: the value (N, 1)."""
        return outputs

    def explained_classes(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The class each map explains (N,): its target, or for PREDICTED the predicted class."""
        return np.where(targets >= 0, targets, self.class_probabilities(outputs).argmax(axis=-1))

    def score_names(self, classes: list[str]) -> list[str]:
        """Names of the per-class score columns."""
        return classes

    def label_problem(self, label: str) -> str | None:
        """Why a sample's label cannot be judged by this task (None: it can)."""
        return None

    def judge(self, answer: Answer, label: str, threshold: float) -> tuple[bool, float | None]:
        """(correct, error) of an answer against a sample's label."""
        return answer.label == label, None

    def agrees(self, answer: Answer, other: Answer, threshold: float) -> bool:
        """Whether another model's answer is the same answer."""
        return answer.label == other.label


class Classification(SampleTask):
    """Softmax (or raw logits) over N classes; explains the target class's logit."""

    name = "classification"
    activation = staticmethod(tf.nn.softmax)

    def attributed(self, logits: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
        """The explained class's log-odds: a logit alone can fall where the class's probability rises
        (the motion family's ordinal middle class: its axis's share 0.04 on the logit, 0.98 here)."""
        return self.evidence(logits, tf.argmax(upstream, axis=-1, output_type=tf.int32))


class Binary(SampleTask):
    """One sigmoid output: class 1 when p >= 0.5. The logit explains class 1, its negation class 0."""

    name = "binary"
    activation = staticmethod(tf.sigmoid)

    def _classes(self, outputs: int) -> int:
        return 2

    def predicted(self, logits: tf.Tensor) -> tf.Tensor:
        return tf.cast(logits[:, 0] >= 0, tf.int32)

    def target(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        positive = tf.where(targets >= 0, targets, self.predicted(logits)) == 1
        return tf.where(positive, logits[:, 0], -logits[:, 0])

    def evidence(self, logits: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        """The log-odds of the class: the logit for class 1, its negation for class 0."""
        return tf.where(classes == 1, logits[:, 0], -logits[:, 0])

    def answer(self, outputs: np.ndarray, classes: list[str]) -> Answer:
        p = float(outputs[0])
        index = int(p >= 0.5)
        return Answer(index, classes[index], p if index else 1.0 - p, np.array([1.0 - p, p]))

    def class_probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return np.concatenate([1.0 - outputs[:, :1], outputs[:, :1]], axis=1)


class Regression(SampleTask):
    """One linear output: a value. Explains the value itself; correct within a threshold."""

    name = "regression"
    activation = staticmethod(tf.identity)
    classifies = False  # a value: no class to look for, and a folder per label value would be useless
    signed = False

    def class_names(self, classes: Sequence[str] | None, outputs: int) -> list[str]:
        return list(classes or [])

    def target_index(self, label: str | None, classes: list[str]) -> int:
        return PREDICTED

    def target(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return logits[:, 0]

    def evidence(self, logits: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        return logits[:, 0]

    def answer(self, outputs: np.ndarray, classes: list[str]) -> Answer:
        value = float(outputs[0])
        return Answer(value, f"{value:.4g}", math.nan, outputs)

    def score_names(self, classes: list[str]) -> list[str]:
        return ["value"]

    def label_problem(self, label: str) -> str | None:
        try:
            float(label)
        except ValueError:
            return f"regression label {label!r} is not a number"
        return None

    def judge(self, answer: Answer, label: str, threshold: float) -> tuple[bool, float | None]:
        error = abs(float(answer.prediction) - float(label))
        return error <= threshold, error

    def agrees(self, answer: Answer, other: Answer, threshold: float) -> bool:
        return abs(float(answer.prediction) - float(other.prediction)) <= threshold

    def unknown_labels(self, labels: list[str], classes: list[str]) -> list[str]:
        return []


class Detection(Task):
    """FOMO: a grid of cells, each a softmax over background (channel 0) and N object classes.
    A target is one object: a mask over the grid's logits (its class's channel at its cells),
    and the score explained is the sum of the logits under it."""

    name = "object detection"
    activation = staticmethod(tf.nn.softmax)

    def _classes(self, outputs: int) -> int:
        return outputs - 1  # Edge Impulse's classes leave out the background

    def target_spec(self, output_shape: tuple[int, ...]) -> tf.TensorSpec:
        return tf.TensorSpec((None, *output_shape), tf.float32)

    def target(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(logits * targets, axis=(1, 2, 3))

    def evidence(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The object's class's log-odds per cell (its logit against the log-sum-exp of the other
        channels), averaged over the object's cells."""
        classes = tf.argmax(tf.reduce_sum(targets, axis=(1, 2)), axis=-1, output_type=tf.int32)
        channel = tf.one_hot(classes, tf.shape(logits)[-1])[:, None, None, :] > 0
        own = tf.reduce_sum(tf.where(channel, logits, 0.0), axis=-1)
        others = tf.reduce_logsumexp(tf.where(channel, -np.inf, logits), axis=-1)
        cells = tf.reduce_max(targets, axis=-1)
        return tf.math.divide_no_nan(tf.reduce_sum((own - others) * cells, axis=(1, 2)), tf.reduce_sum(cells, (1, 2)))

    def region(self, targets: tf.Tensor) -> tf.Tensor:
        """The object's neighbourhood: its cells and NEIGHBOURHOOD cells around them."""
        cells = tf.reduce_max(targets, axis=-1, keepdims=True)
        size = 2 * NEIGHBOURHOOD + 1
        return tf.nn.max_pool2d(cells, size, 1, "SAME")[..., 0]

    def target_index(self, label: str | None, classes: list[str]) -> int:
        if label is not None:
            raise GradcamError("--target-class does not apply to object detection: every object is explained")
        return PREDICTED

    def labels_of(self, sample) -> list[str]:
        return [box.label for box in sample.boxes or ()]


def task_for(activation: str, outputs: int, layer: str, spatial: bool = False) -> Task:
    """The task of a model whose last layer `layer` has this activation and number of outputs
    (spatial: per cell of a grid)."""
    if spatial:
        if activation == "softmax" and outputs >= 2:
            return Detection()
        raise GradcamError(
            f"the model's last layer {layer!r} gives a grid of {outputs} values per cell with activation "
            f"{activation!r}; of models with a grid output only FOMO (a softmax over background and the "
            "object classes) can be explained"
        )
    if activation == "softmax" or (activation == "linear" and outputs > 1):
        return Classification()
    if activation == "sigmoid" and outputs == 1:
        return Binary()
    if activation == "linear" and outputs == 1:
        return Regression()
    raise GradcamError(
        f"the model's last layer {layer!r} has activation {activation!r} with {outputs} outputs; "
        "expected softmax (classification), one sigmoid (binary) or one linear output (regression)"
    )
