"""`--method auto` settled before the batch loop: the calibration (gradcam.engine.calibration) on an
evenly spread sample of the job's own samples, prepared as the stages prepare them; the job is then
rebuilt with its choice, and the loop never knows there was one."""

from __future__ import annotations

import logging

import numpy as np

from gradcam.choices import AUTO, METHODS, OCCLUSION
from gradcam.edge.dataset import Sample
from gradcam.engine.calibration import ROUND, Choice, calibrate, layer_sets, spread
from gradcam.engine.tasks import Detection
from gradcam.explainer import Explainer
from gradcam.job.stages import Stages
from gradcam.settings import Settings

log = logging.getLogger("gradcam")


def calibrates(settings: Settings, explainer: Explainer) -> bool:
    """Whether the job settles `auto` by calibration: a gradient method or the layers left to `auto`, for
    maps of a convolution's layers, one per sample (a model explained at its input, or FOMO's objects,
    keep their own default), unless the model's own evidence is off (`--evidence off`: no reference at all)."""
    if settings.evidence == "off":
        return False
    gradient = settings.method in (AUTO, *METHODS)
    left = AUTO in (settings.method, settings.layer)
    if not (gradient and left and explainer.adapter.path is None and not isinstance(explainer.task, Detection)):
        return False
    return settings.method == AUTO or len(layer_sets(explainer.adapter)) > 1  # else there is nothing to choose


def enough(samples: list[Sample]) -> bool:
    """Whether there are samples enough to choose on: ROUND at least (fewer keep auto's default: a share
    of agreeing maps among 4 could be anything from 0.1 to 0.9)."""
    return len(samples) >= ROUND


def choose(explainer: Explainer, model, settings: Settings, stages: Stages, samples: list[Sample]) -> Choice | None:
    """The calibration's choice on an evenly spread sample of `samples`; None when none can be read."""
    prepared = [stages.prepare(samples[i]) for i in spread(len(samples))]
    inputs = [p.inputs for p in prepared if not p.reason]
    if not inputs:
        return None
    choice = calibrate(explainer, model, np.stack(inputs), settings.method, settings.layer)
    log.info("%s", described(choice))
    return choice


def described(choice: Choice, shown: int = 3) -> str:
    """The log's line: what auto chose and why, and the best of the other candidates (results.json has
    them all)."""
    chosen, count = choice.chosen, choice.samples
    gradients = [c for c in choice.candidates if c.method != OCCLUSION]
    others = sorted((c for c in gradients if c != chosen), key=lambda c: -c.agreement)[:shown]
    listed = ", ".join(f"{c.label} {c.agreement:.0%}" for c in others)
    if chosen.method == OCCLUSION:
        best = max((c.agreement for c in gradients), default=0.0)
        head = f"auto: occlusion (the model's own evidence) is the map: no gradient map agrees with it on {best:.0%}+"
    else:
        head = f"auto: {chosen.label}, whose maps agree with the model's own evidence on {chosen.agreement:.0%}"
    return f"{head} of {count} samples (next: {listed}; {choice.seconds:.1f}s)"
