"""Which CAM method an audio model's maps should use: measured on the whole fixture family
(tests/fixtures/make_audio_family.py: EI's 1-D and 2-D conv models and a global-average-pooling
variant, on MFE and MFCC, with a lone burst or a burst among sounds of no class), not on one member.

Per member and method, on 150 held-out windows (seeded):
- time: the share of correct windows whose map peaks in the burst's frames (one frame of slack);
- band: for 2-D maps on MFE, the share whose peak filter's centre lies in the class's band;
- random: the time share of re-initialised copies of the model (the mean over RANDOM_COPIES);
- faith: the mean faithfulness (deletions set to each band's background).

    .venv/bin/python bench/audio_methods.py [--windows 150] [--copies 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.engine.tasks import PREDICTED  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from tests import audio, helpers  # noqa: E402
from tests.fixtures.make_audio_family import MEMBERS, Member  # noqa: E402

METHODS = ("gradcam", "hirescam", "layercam", "fusion")  # fusion: Grad-CAM x LayerCAM of the first conv
TIME_TARGET, RANDOM_CEILING = 0.85, 0.45


def explainer(model, method: str, faithfulness: bool = True) -> Explainer:
    """The method's explainer; "fusion" explains both convolutions, the deeper with Grad-CAM."""
    options = {"method": method}
    if method == "fusion":
        convs = [layer.name for layer in model.layers if "conv" in type(layer).__name__.lower()]
        options = {"method": "gradcam", "layer": ",".join(reversed(convs))}
    return Explainer(model, audio.CLASSES, fill="background", faithfulness=faithfulness, reads_features=True, **options)


def located(member: Member, maps: list) -> np.ndarray:
    """Each map's peak as (frame, column) of the features, found as the job finds it; a blank map, or
    a column the map does not tell apart: -10 (nowhere)."""
    peaks = member.peaks([m.cam for m in maps])
    return np.array([(-10, -10) if p is None else (p.frame, -10 if p.column is None else p.column) for p in peaks])


def in_burst(peaks: np.ndarray, spans: np.ndarray) -> np.ndarray:
    return (peaks[:, 0] >= spans[:, 0] - 1) & (peaks[:, 0] <= spans[:, 1] + 1)


def in_band(peaks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centres = audio.mel_points()[1:-1]
    bands = [audio.BANDS[audio.CLASSES[label]] for label in labels]
    return np.array([f >= 0 and low <= centres[f] <= high for f, (low, high) in zip(peaks[:, 1], bands, strict=True)])


def measure(member: Member, method: str, n: int = 150, copies: int = 4) -> dict:
    """One member and method: time, band (None where it does not apply), random and faith."""
    import tf_keras

    model = tf_keras.models.load_model(member.path)
    data, x = member.held_out(n)
    inputs = x.reshape(n, audio.FRAMES, member.columns, 1)
    targets = np.full(n, PREDICTED, np.int32)
    maps = explainer(model, method).maps(inputs, targets)
    correct = np.array([m.probabilities.argmax() for m in maps]) == data.labels
    spans = audio.burst_frames(data)
    peaks = located(member, maps)
    two_d = maps[0].cam.shape[1] > 1
    band = in_band(peaks[correct], data.labels[correct]).mean() if two_d and member.block == "mfe" else None
    random = []
    for seed in range(copies):
        copy = helpers.randomised(model, x, seed)
        random.append(in_burst(located(member, explainer(copy, method, False).maps(inputs, targets)), spans).mean())
    return {
        "time": float(in_burst(peaks[correct], spans[correct]).mean()),
        "band": band,
        "random": float(np.mean(random)),
        "faith": float(np.mean([m.faithfulness for m in maps])),
        "accuracy": float(correct.mean()),
    }


def table(n: int = 150, copies: int = 4) -> tuple[list[str], dict]:
    """The Markdown table (a row per member, time / random per method) and the measurements."""
    results = {(member.name, method): measure(member, method, n, copies) for member in MEMBERS for method in METHODS}
    lines = [
        f"Audio maps on the fixture family ({n} windows per member; time: peak in the burst, share of correct "
        f"windows; random: the same on {copies} re-initialised copies; band: 2-D maps on MFE; faith: mean "
        "faithfulness):",
        "",
        "| member | " + " | ".join(METHODS) + " |",
        "|---|" + "---|" * len(METHODS),
    ]
    for member in MEMBERS:
        cells = []
        for method in METHODS:
            r = results[(member.name, method)]
            band = "" if r["band"] is None else f", band {r['band']:.2f}"
            cells.append(f"{r['time']:.2f} / {r['random']:.2f}{band}, faith {r['faith']:.2f}")
        lines.append(f"| {member.name} | " + " | ".join(cells) + " |")
    worst = {m: min(results[(member.name, m)]["time"] for member in MEMBERS) for m in METHODS}
    ceiling = {m: max(results[(member.name, m)]["random"] for member in MEMBERS) for m in METHODS}
    lines += [
        "| **worst member** | " + " | ".join(f"**{worst[m]:.2f} / {ceiling[m]:.2f}**" for m in METHODS) + " |",
        "",
        f"Target: time >= {TIME_TARGET} on every member, random <= {RANDOM_CEILING}.",
    ]
    return lines, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=150)
    parser.add_argument("--copies", type=int, default=4)
    args = parser.parse_args()
    print("\n".join(table(args.windows, args.copies)[0]))


if __name__ == "__main__":
    main()
