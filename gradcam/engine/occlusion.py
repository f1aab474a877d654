"""The model's own evidence: how far the explained score falls when one part of the input is hidden.

Occlusion (Zeiler & Fergus 2014) on the model that runs: the Keras model, or LiteRT for a TFLite file
(`Forward.logits`), so it needs no gradient and no twin. Each part of the input is hidden in turn,
replaced by what faithfulness deletes with (a blurred copy of an image, a window of features'
background, a flat vector's baseline: gradcam.engine.faithfulness), and the fall of the explained
target's evidence (its log-odds, Task.evidence, which a confident softmax does not saturate) is
recorded. A map cell's value is the mean fall over the parts that hide it, weighted by how much of
it each hides. Every class's evidence comes from the same hidden copies, so a mistake's map of its
true class costs nothing more.

What a part is comes from the input's own geometry (gradcam.engine.parts): an image's patches, a
block of audio features' time x frequency cells, a flat block's feature groups. One mechanism for all.

It is a method of its own (`--method occlusion`: the map shown is the evidence itself), and the
reference every other map is scored against (gradcam.engine.agreement.evidence_at_peak).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import tensorflow as tf

from gradcam.engine import faithfulness
from gradcam.engine.agreement import evidence_at_peak
from gradcam.engine.cam import CamBatch
from gradcam.engine.faithfulness import Fill
from gradcam.engine.model import Forward
from gradcam.engine.parts import Parts
from gradcam.engine.tasks import PREDICTED, SampleTask, Task
from gradcam.explanation import SampleMaps

# Hidden copies per model call: larger batches ran slower on 2 cores (MobileNetV2 96: 600/s at 64, 360 at 512).
COPIES = 128
MEMO = 64 * 2**20  # bytes of hidden copies' scores kept (Evidence.hidden_scores)


class Memo:
    """Hidden copies' scores by their input's digest, `limit` bytes of them at most: the oldest go first."""

    def __init__(self, limit: int = MEMO):
        self.kept: dict[bytes, np.ndarray] = {}
        self.limit, self.size = limit, 0

    def __contains__(self, key: bytes) -> bool:
        return key in self.kept

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, key: bytes) -> np.ndarray:
        return self.kept[key]

    def keep(self, key: bytes, scores: np.ndarray) -> None:
        self.kept[key] = scores
        self.size += scores.nbytes
        while self.size > self.limit and len(self.kept) > 1:
            self.size -= self.kept.pop(next(iter(self.kept))).nbytes


def hidden(inputs: np.ndarray, fill: np.ndarray, parts: Parts) -> np.ndarray:
    """Every part of every input (N, H, W, C) hidden, image by image: (N * K, H, W, C)."""
    masks = parts.masks[None, :, :, :, None] > 0
    return np.where(masks, fill[:, None], inputs[:, None]).reshape(-1, *inputs.shape[1:])


def _digests(encoded: np.ndarray) -> list[bytes]:
    """Each encoded input's digest: the memo's key."""
    return [hashlib.blake2b(x.tobytes(), digest_size=16).digest() for x in encoded]


class Evidence:
    """The falls of targets' evidence when each part is hidden, on the model that runs (`forward`:
    its `encode` and `run`, gradcam.engine.model.Forward)."""

    def __init__(self, forward: Forward, task: Task, parts: Parts, fill: Fill):
        self.forward, self.task, self.parts, self.fill = forward, task, parts, fill
        self.memo = Memo()  # an encoded input's digest -> its hidden copies' scores

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """The scores before the final activation of a batch of model inputs."""
        return self._run(self.forward.encode(inputs))

    def _run(self, encoded: np.ndarray) -> np.ndarray:
        """The scores of encoded inputs, COPIES at a time."""
        run = self.forward.run
        return np.concatenate([run(encoded[i : i + COPIES]) for i in range(0, max(len(encoded), 1), COPIES)])

    def falls(
        self, inputs: np.ndarray, targets: Sequence[np.ndarray], owners: np.ndarray, logits: np.ndarray
    ) -> np.ndarray:
        """Per target (of image owners[m], what it explains: a class index, or a FOMO object's mask),
        the fall of its evidence when each part is hidden (M, K); logits: the unhidden inputs' scores."""
        copies = self.hidden_scores(inputs)
        falls = np.zeros((len(owners), len(self.parts)), np.float32)
        for m, owner in enumerate(owners):
            falls[m] = self._fall(logits[owner], copies[owner], targets[m])
        return falls

    def hidden_scores(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Each input's scores with each part hidden in turn (K, ...): run once per input, then kept
        (MEMO bytes at most), so that an input checked twice (auto's sample, then in the job) runs once."""
        encoded = self.forward.encode(inputs).reshape(inputs.shape)
        keys = _digests(encoded)
        found = {key: self.memo[key] for key in keys if key in self.memo}
        fresh = list({key: i for i, key in enumerate(keys) if key not in found}.values())
        if fresh:
            filled = self.forward.encode(self.fill(tf.constant(inputs[fresh], tf.float32)).numpy())
            filled = filled.reshape(len(fresh), *inputs.shape[1:])
            per_call = max(1, COPIES // len(self.parts))  # inputs whose copies go through the model together
            for first in range(0, len(fresh), per_call):
                chunk = fresh[first : first + per_call]
                scores = self._run(hidden(encoded[chunk], filled[first : first + per_call], self.parts))
                for i, each in zip(chunk, scores.reshape(len(chunk), len(self.parts), *scores.shape[1:]), strict=True):
                    found[keys[i]] = each
                    self.memo.keep(keys[i], each)
        return [found[key] for key in keys]

    def known(self, inputs: np.ndarray) -> np.ndarray:
        """Which inputs' hidden copies' scores are kept (bool): checking them again costs no model call.
        Asked of every batch: nothing is digested while nothing is kept (no check made yet, --evidence off)."""
        if not len(self.memo):
            return np.zeros(len(inputs), bool)
        keys = _digests(self.forward.encode(inputs).reshape(inputs.shape))
        return np.array([key in self.memo for key in keys], bool)

    def _fall(self, logits: np.ndarray, copies: np.ndarray, target: np.ndarray) -> np.ndarray:
        """One target's evidence unhidden less its evidence in each hidden copy (K,)."""
        both = np.concatenate([logits[None], copies])
        repeated = tf.constant(np.repeat(np.asarray(target)[None], len(both), axis=0))
        evidence = self.task.evidence(tf.constant(both, tf.float32), repeated).numpy()
        return evidence[0] - evidence[1:]

    def maps(self, inputs: np.ndarray, targets: Sequence[np.ndarray], owners: np.ndarray, logits: np.ndarray):
        """Each target's evidence map (M, h, w): the falls, cell by cell."""
        return self.parts.to_maps(self.falls(inputs, targets, owners, logits))

    def agreements(
        self, inputs: np.ndarray, targets: Sequence[np.ndarray], owners: np.ndarray, cams: Sequence[np.ndarray]
    ) -> list[float | None]:
        """How far each map (cams[m], of input owners[m], explaining targets[m]) agrees with the
        model's own evidence for its target: gradcam.engine.agreement.evidence_at_peak."""
        if not len(owners):
            return []
        references = self.maps(inputs, targets, np.asarray(owners), self.scores(inputs))
        return [evidence_at_peak(cam, reference) for cam, reference in zip(cams, references, strict=True)]

    def check(self, names: list[str], inputs: np.ndarray, maps: list[SampleMaps]) -> list[SampleMaps]:
        """Explainer.check: each sample's maps (of a batch of model inputs) with their agreement with the
        model's own evidence for the class each explains (names: the classes, by score)."""
        if not maps:
            return maps
        pairs = [(i, m.cam, m.explained) for i, m in enumerate(maps)]
        pairs += [(i, m.contrast, m.contrast_class) for i, m in enumerate(maps) if m.contrast is not None]
        owners, cams, explained = zip(*pairs, strict=True)
        targets = [names.index(name) if self.task.classifies else 0 for name in explained]
        found = self.agreements(inputs, targets, np.array(owners, np.int32), cams)
        contrasts = iter(found[len(maps) :])
        return [
            replace(m, evidence=found[i], contrast_evidence=next(contrasts) if m.contrast is not None else None)
            for i, m in enumerate(maps)
        ]


class Occlusion:
    """The method: each target's evidence map shown as its map (the falls above zero), with a mistake's
    map of its true class and each map's faithfulness, as BaseCAM gives them (CamBatch), from forward
    passes alone."""

    def __init__(self, adapter: Forward, evidence: Evidence, faithfulness: bool = False):
        self.adapter, self.evidence, self.faithfulness = adapter, evidence, faithfulness

    def __call__(
        self,
        images: np.ndarray,
        targets: np.ndarray | None = None,
        owners: np.ndarray | None = None,
        truths: np.ndarray | None = None,
    ) -> CamBatch:
        """As BaseCAM.__call__: one map per target (a class index, PREDICTED: the prediction; a FOMO
        object's mask) of image owners[m]; truths: the true class of each target's image (-1: none)."""
        task = self.adapter.task
        logits = self.evidence.scores(images)
        probabilities = task.activation(tf.constant(logits, tf.float32)).numpy()
        owners = np.arange(len(images), dtype=np.int32) if owners is None else np.asarray(owners, np.int32)
        targets = np.full(len(owners), PREDICTED, np.int32) if targets is None else np.asarray(targets)
        explained, mistakes, true = targets, np.zeros(0, np.int32), np.zeros(0, np.int32)
        if isinstance(task, SampleTask):
            explained = task.explained_classes(probabilities[owners], targets)
            if truths is not None:
                mistakes = np.flatnonzero((truths >= 0) & (truths != explained)).astype(np.int32)
                true = np.asarray(truths)[mistakes]
        every = np.concatenate([owners, owners[mistakes]])
        maps = np.maximum(self.evidence.maps(images, [*explained, *true], every, logits), 0)
        maps, contrasts = maps[: len(owners)], maps[len(owners) :]
        shown = [(owners, maps, explained), (owners[mistakes], contrasts, true)]
        return CamBatch(
            maps, logits[owners], probabilities[owners], contrasts, mistakes, *self._scored(images, logits, shown)
        )

    def _scored(self, images: np.ndarray, logits: np.ndarray, parts: list[tuple]) -> list[np.ndarray]:
        """The faithfulness of each part's maps, a part being (their images, maps, explained classes),
        on the model that runs; empty where not measured."""
        if not self.faithfulness:
            return [np.zeros(0, np.float32) for _ in parts]

        def logits_of(x: tf.Tensor) -> tf.Tensor:
            return tf.constant(self.evidence.scores(x.numpy()), tf.float32)

        tensors = [
            tuple(tf.constant(a) for a in (images[owners], maps, logits[owners], classes))
            for owners, maps, classes in parts
            if len(owners)
        ]
        found = iter(faithfulness.measure(logits_of, self.adapter.task, tensors, self.evidence.fill) if tensors else [])
        return [next(found).numpy() if len(owners) else np.zeros(0, np.float32) for owners, _maps, _classes in parts]
