"""`auto`'s choice, per model, against the model's own evidence: a small calibration on an evenly spread
sample of the job's own samples, before the batch loop, whose result settles the method and layers.

The candidates are the layer sets `--layer auto` knows (its fused default, the deepest of those layers
alone, the last convolution) with every gradient method (METHODS), and occlusion itself
(gradcam.engine.occlusion). The gradient candidates come from one pass over the union of their
layers: its activations and gradients are kept, and each candidate's map is made from them as the
job's own pass makes it (BaseCAM.maps_of). Each candidate is scored by the share of its maps that
agree with the reference (gradcam.engine.agreement.evidence_at_peak >= AGREES).

The default (the explainer's own method on `--layer auto`'s layers) is kept where its share reaches
GOOD; else the best gradient candidate that does: its maps are sharper, and it costs about one pass
where occlusion costs one per part. Otherwise the map shown is the evidence itself.
GOOD is measured (bench/real_models.py, docs/trust.md): the default maps of the trained fixture
family (Grad-CAM pointing at the object on 0.9-1.0 of images) agree on 0.73-0.83 of their images;
those of real Studio-built classifiers on their own photos on 0.2-0.62.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from gradcam.choices import AUTO, METHODS, OCCLUSION
from gradcam.engine.agreement import AGREES, evidence_at_peak
from gradcam.engine.cam import make_cam
from gradcam.engine.formats import adapter_for
from gradcam.engine.layers import Layer
from gradcam.engine.tasks import PREDICTED

SAMPLE = 24  # samples the choice is made on at most, evenly spread over the job's
ROUND = 8  # samples whose evidence is taken at a time, until the choice is clear
GOOD = 0.7  # the share of a gradient candidate's maps that must agree for it to be used


@dataclass(frozen=True)
class Candidate:
    """One way to explain the model, and the share of the sample's maps that agree with its evidence."""

    method: str
    layer: str  # the layers, deepest first, comma separated ("input" for occlusion)
    agreement: float
    layers: str = "the input"  # which of the layer sets: the auto layers, the deepest of them, the last conv

    @property
    def label(self) -> str:
        return f"{self.method} on {self.layers}"


@dataclass(frozen=True)
class Choice:
    """What `auto` chose, on how many samples, in how long, and how every candidate scored."""

    chosen: Candidate
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)
    samples: int = 0
    seconds: float = 0.0
    silent: int = 0  # samples where hiding no part lowers the score: the evidence says nothing there

    @property
    def method(self) -> str:
        return self.chosen.method

    @property
    def layer(self) -> str:
        return AUTO if self.chosen.method == OCCLUSION else self.chosen.layer


def spread(count: int, wanted: int = SAMPLE) -> list[int]:
    """`wanted` indices evenly spread over `count` (all of them when there are fewer)."""
    return sorted({int(i) for i in np.linspace(0, count - 1, min(wanted, count))}) if count else []


def layer_sets(adapter) -> dict[str, list[Layer]]:
    """The layer sets `auto` weighs, by name, each layer set deepest first: `--layer auto`'s, the
    deepest of them alone, the last convolution; each once."""
    found: dict[str, list[Layer]] = {}
    named = (("the auto layers", adapter.layers), ("the deepest of them", adapter.layers[:1]))
    for name, layers in (*named, ("the last conv", [adapter.last_conv])):
        if layers not in found.values():
            found[name] = layers
    return found


def calibrate(explainer, model, inputs: np.ndarray, method: str = AUTO, layer: str = AUTO) -> Choice:
    """The best way to explain `model` on these model inputs (explainer: the job's, whose layers, task
    and evidence are the defaults). method, layer: as given; `auto` weighs every gradient method, or
    every layer set, and occlusion where both are. The evidence is taken ROUND samples at a time, each
    round spread over them all, until the choice is clear (see `settled`)."""
    started = time.monotonic()
    adapter, task = explainer.adapter, explainer.task
    logits = adapter.logits(inputs)
    probabilities = task.activation(tf.constant(logits, tf.float32)).numpy()
    explained = task.explained_classes(probabilities, np.full(len(inputs), PREDICTED))
    # The explainer's own method (auto's rule for the kind of model) first: the default, kept where it agrees.
    methods = (explainer.method, *[m for m in METHODS if m != explainer.method]) if method == AUTO else (method,)
    sets = layer_sets(explainer.adapter) if layer == AUTO else {"the given layers": explainer.adapter.layers}
    named, maps = _candidate_maps(explainer, model, inputs, explained, methods, sets)
    order = np.concatenate([np.arange(start, len(inputs), len(inputs) // ROUND or 1) for start in range(ROUND)])
    order = list(dict.fromkeys(order.tolist()))  # each round spread over the sample
    taken, reference = [], {}
    for first in range(0, len(order), ROUND):
        rows = order[first : first + ROUND]
        found = explainer.evidence.maps(inputs[rows], list(explained[rows]), np.arange(len(rows)), logits[rows])
        reference.update(zip(rows, found, strict=True))
        taken += rows
        scores = {key: _share(each[taken], np.stack([reference[i] for i in taken])) for key, each in maps.items()}
        if settled(next(iter(scores.values())), max(scores.values()), len(taken)):
            break
    candidates = [Candidate(method, named[layers][0], scores[method, layers], layers) for method, layers in maps]
    best = candidates[0] if candidates[0].agreement >= GOOD else max(candidates, key=lambda c: c.agreement)
    references = np.stack([reference[i] for i in taken])
    silent = int(sum(not r.max() > 0 for r in references))
    if method == layer == AUTO:
        occlusion = Candidate(OCCLUSION, "input", _share(references, references))
        candidates.append(occlusion)
        if best.agreement < GOOD:
            best = occlusion
    return Choice(best, tuple(candidates), len(taken), time.monotonic() - started, silent)


def settled(default: float, best: float, samples: int) -> bool:
    """Whether the choice is clear on `samples`: the default candidate's share of agreeing maps at GOOD or
    above (it is kept), or the best candidate's below GOOD by more than the share's sampling error
    (1.3 standard errors of a share near one half: 0.23 on 8 samples), when no gradient map will do.
    Leaving the measured default takes evidence; keeping it does not."""
    return default >= GOOD or best + 1.3 * 0.5 / np.sqrt(samples) < GOOD


def _candidate_maps(explainer, model, inputs, explained, methods, sets) -> tuple[dict, dict]:
    """Every gradient candidate's maps of the inputs (each method on each layer set, sets: by name),
    from one pass over the union of their layers: ({layer set's name: (its layers' names, its
    layers)}, {(method, layer set's name): maps})."""
    union = list(dict.fromkeys(layer for layers in sets.values() for layer in layers))
    tapped = adapter_for(model, ",".join(layer.name for layer in union), explainer.impulse_shape)
    order = [layer.path for layer in tapped.layers]
    activations, grads = _pass(tapped, tf.constant(inputs, tf.float32), tf.constant(explained, tf.int32))
    named, maps = {}, {}
    for name, layers in sets.items():
        idx = [order.index(layer.path) for layer in layers]
        named[name] = (",".join(layer.name for layer in layers), layers)
        chosen = ([activations[i] for i in idx], [grads[i] for i in idx])
        for method in methods:
            maps[method, name] = make_cam(tapped, method).maps_of(*chosen).numpy()
    return named, maps


def _share(maps: np.ndarray, reference: np.ndarray) -> float:
    """The share of maps whose peak holds at least AGREES of their reference's largest fall."""
    found = [evidence_at_peak(m, r) for m, r in zip(maps, reference, strict=True)]
    return float(np.mean([a is not None and a >= AGREES for a in found]))


def _pass(adapter, inputs: tf.Tensor, classes: tf.Tensor) -> tuple[list, list]:
    """The adapter's layers' activations and the gradients of the classes' scores, eagerly: one pass
    over a small sample, where tracing it first costs more than the pass (MobileNetV2 96 on 24
    samples: 0.9 s eager, 2.5 s traced)."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(inputs)
        out = adapter(inputs)
        y = adapter.task.target(out.scores, classes)
    return out.activations, tape.gradient(y, out.activations)
