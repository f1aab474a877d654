"""Attribution over the input features, for models without convolutions: Edge Impulse's Dense
classifiers on motion and sensor features, whose input is a flat vector a DSP block computed.

There is no map to take: the explained "layer" is the input itself, seen as `values x 1`. The
difference of each window from a baseline, A = x - b, is what the input holds; the score's gradient
is taken along the straight path from b to x and averaged (Integrated Gradients, Sundararajan et al.
2017), and a feature's attribution is A times that mean gradient. The shared CAM pass (HiResCAM's
element-wise weights, gradcam.engine.cam) then gives A * dy/dA, signed: what each feature added to
the explained score before the softmax, or took from it. With one step on the path it is gradient x
(input - baseline). Each sample's attributions are scaled by their largest magnitude (`scaled`).

The baseline is each feature's median over the windows explained (the job's; the Python API's
default is zero): a feature at its usual value carries no attribution, and faithfulness deletes a
feature by setting it to the same baseline. Measured on the motion fixture family (docs/motion.md): the
informative axis holds 0.97-0.99 of the positive attribution per axis on 6 of 8 members for both
Integrated Gradients and gradient x input; on the small Dense model over raw samples, the first order
is poor (0.57) and the path integral does better (0.78).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gradcam.engine.layers import Layer, Node

INPUT = Node("input", "Input")
STEPS = 16  # points on the path from the baseline (right Riemann sum, the last one the input itself)


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
    """Scores of flat feature vectors whose gradient, with respect to each vector's difference from
    the baseline, is the mean gradient along the path from the baseline: what the CAM pass takes as
    the activations and scores of a model explained at its input."""

    def __init__(self, logits: Callable[[tf.Tensor], tf.Tensor], values: int, steps: int = STEPS):
        self.logits = logits
        self.steps = steps
        self.baseline = tf.Variable(tf.zeros(values), trainable=False, name="baseline")

    def set_baseline(self, baseline: np.ndarray | None) -> None:
        """Each feature's value where it carries no attribution (None: zero); the passes read it as it
        is when they run."""
        if baseline is not None:
            self.baseline.assign(np.asarray(baseline, np.float32).reshape(self.baseline.shape))

    def fill(self, inputs: tf.Tensor) -> tf.Tensor:
        """What faithfulness puts in place of a deleted feature: the baseline."""
        return tf.broadcast_to(tf.reshape(self.baseline, (1, -1, 1, 1)), tf.shape(inputs))

    def __call__(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Flat inputs (N, values) -> (their differences from the baseline as a 1-D layer's activations
        (N, values, 1), the logits)."""
        baseline = tf.convert_to_tensor(self.baseline)
        steps, logits = self.steps, self.logits

        @tf.custom_gradient
        def scores(delta: tf.Tensor):
            def mean_gradient(upstream: tf.Tensor, variables=None):
                alphas = tf.range(1, steps + 1, dtype=tf.float32) / steps
                points = tf.reshape(baseline + alphas[:, None, None] * delta[None], (-1, delta.shape[-1]))
                with tf.GradientTape() as tape:
                    tape.watch(points)
                    path = logits(points)
                grads = tape.gradient(path, points, output_gradients=tf.tile(upstream, [steps, 1]))
                mean = tf.reduce_mean(tf.reshape(grads, (steps, -1, delta.shape[-1])), axis=0)
                return mean, [None] * len(variables or [])

            return logits(baseline + delta), mean_gradient

        activations = (x - baseline)[:, :, None]
        return activations, scores(activations[:, :, 0])
