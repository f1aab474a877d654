"""Attribution over the input features, for models without convolutions: Edge Impulse's Dense
classifiers on motion and sensor features, whose input is a flat vector a DSP block computed.

There is no map to take: the explained "layer" is the input itself, seen as `values x 1`. A feature's
attribution is its difference from a starting point times the score's gradient averaged along the
straight path from there (Integrated Gradients, Sundararajan et al. 2017); with one point on the path
it is gradient x (input - baseline). Expected Gradients (Erion et al. 2021) averages Integrated
Gradients over starting points drawn from the data. The shared CAM pass (gradcam.engine.cam) gets
the attribution as the gradient of the score with respect to each feature's presence, signed: what
each feature added to the explained score before the softmax, or took from it. Each sample's
attributions are scaled by their largest magnitude (`scaled`).

The baseline is each feature's median over the windows explained (the job's; the Python API's
default is zero): a feature at its usual value carries no attribution, and faithfulness deletes a
feature by setting it to the same baseline. Measured on the motion fixture family (docs/motion.md):
with Expected Gradients of the log-odds (auto), the informative axis holds 0.96-0.99 of every class's
attribution on all 12 members; from the median alone, one class of each ordinal member (the one whose
swing the median lies nearest) got 0.00-0.42.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gradcam.engine.layers import Layer, Node
from gradcam.engine.tasks import Task

INPUT = Node("input", "Input")
STEPS = 16  # points on the path from the baseline (right Riemann sum, the last one the input itself)
REFERENCES = 16  # windows drawn from the data, for Expected Gradients
ALPHAS = 4  # points on the path from each of them (midpoints of four equal parts)
AUTO_INPUT = "expected-gradients"  # what `--method auto` stands for on a model explained at its input


def scaled(attributions: np.ndarray) -> np.ndarray:
    """Each sample's attributions (N, ...) divided by their largest magnitude: -1..1, signs and order
    kept (a zero map stays zero)."""
    flat = attributions.reshape(len(attributions), int(np.prod(attributions.shape[1:])))
    top = np.abs(flat).max(axis=1, initial=0.0)
    return (flat / np.where(top > 0, top, 1.0)[:, None]).reshape(attributions.shape).astype(np.float32)


def input_layer(values: int) -> Layer:
    """The input as the explained layer: `values x 1`, one channel."""
    return Layer((INPUT,), values, 1, 1)


class InputPath:
    """Scores of flat feature vectors whose gradient, with respect to each feature's presence (the
    activations the CAM pass takes, all ones), is that feature's attribution: the differences from the
    path's starting points times the mean gradient, along the paths, of what the task explains there
    (Task.attributed: a class's log-odds), for one of three methods (`method`): integrated-gradients
    (from the baseline, STEPS points), gradient-x-input (one point: the input), or expected-gradients
    (from each of REFERENCES windows drawn from the data, ALPHAS points each: Erion et al. 2021; no single
    baseline whose value erases a class)."""

    def __init__(self, logits: Callable[[tf.Tensor], tf.Tensor], values: int, task: Task, method: str = AUTO_INPUT):
        self.logits, self.task, self.method = logits, task, method
        self.baseline = tf.Variable(tf.zeros(values), trainable=False, name="baseline")
        self.references = tf.Variable(tf.zeros((REFERENCES, values)), trainable=False, name="references")

    def set_baseline(self, baseline: np.ndarray | None) -> None:
        """Each feature's value where it carries no attribution (None: zero); the passes read it as it
        is when they run."""
        if baseline is not None:
            self.baseline.assign(np.asarray(baseline, np.float32).reshape(self.baseline.shape))

    def set_references(self, windows: np.ndarray) -> None:
        """Windows drawn from the data (at least one), Expected Gradients' starting points: REFERENCES of
        them, evenly spread, repeated where there are fewer."""
        rows = np.linspace(0, len(windows) - 1, REFERENCES).round().astype(int)
        self.references.assign(np.asarray(windows, np.float32).reshape(len(windows), -1)[rows])

    def fill(self, inputs: tf.Tensor) -> tf.Tensor:
        """What faithfulness (and the model's own evidence) put in place of a deleted feature: the baseline."""
        return tf.broadcast_to(tf.reshape(self.baseline, (1, -1, 1, 1)), tf.shape(inputs))

    def _path(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The paths' starting points (P, values) and how far along each the point lies (P,)."""
        if self.method == "expected-gradients":
            alphas = (tf.range(ALPHAS, dtype=tf.float32) + 0.5) / ALPHAS
            return tf.repeat(self.references, ALPHAS, axis=0), tf.tile(alphas, [REFERENCES])
        steps = STEPS if self.method == "integrated-gradients" else 1
        return tf.repeat(self.baseline[None], steps, axis=0), tf.range(1, steps + 1, dtype=tf.float32) / steps

    def __call__(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Flat inputs (N, values) -> (each feature's presence, ones, as a 1-D layer's activations (N,
        values, 1); the logits, whose gradient with respect to the presence is the attribution)."""
        starts, alphas = self._path()
        logits, points = self.logits, tf.shape(alphas)[0]

        @tf.custom_gradient
        def scores(presence: tf.Tensor):
            def attribution(upstream: tf.Tensor, variables=None):
                deltas = x[None] - starts[:, None]  # (P, N, values)
                path = tf.reshape(starts[:, None] + alphas[:, None, None] * deltas, (-1, x.shape[-1]))
                with tf.GradientTape() as tape:
                    tape.watch(path)
                    found = self.task.attributed(logits(path), tf.tile(upstream, [points, 1]))
                grads = tape.gradient(found, path)
                mean = tf.reduce_mean(deltas * tf.reshape(grads, tf.shape(deltas)), axis=0)
                return mean[:, :, None] * presence, [None] * len(variables or [])

            return logits(x), attribution

        presence = (x * 0 + 1)[:, :, None]  # on the tape, so that the CAM pass can ask for its gradient
        return presence, scores(presence)
