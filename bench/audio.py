"""make bench's audio row: the job on keyword windows against its own CAM + faithfulness pass alone.

The job runs as with an API key, against the Studio emulator (tests/studio_emulator.py) on this
machine: the features, labels and DSP metadata downloaded, every window explained (the auto method,
faithfulness on), its spectrogram drawn and encoded, every sample's WAV fetched for the report's
player, deploy.zip written. The CAM pass alone runs the same explainer's maps and faithfulness on the
same windows, batched. Both after the model is loaded and traced, in one run, on the two keyword
fixtures (MFE, 99 frames x 40 filters: Edge Impulse's 1-D model and a 2-D variant), two windows per
sample.

    .venv/bin/python bench/audio.py [--windows 1000]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.edge import sources  # noqa: E402
from gradcam.engine.formats import load_model  # noqa: E402
from gradcam.engine.tasks import PREDICTED  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from gradcam.job.run import Job  # noqa: E402
from gradcam.settings import Settings  # noqa: E402
from tests import audio  # noqa: E402
from tests import studio_emulator as emu  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def _project(data: audio.Clips, x: np.ndarray) -> emu.AudioProject:
    samples = [(1000 + i, 2) for i in range(len(x) // 2)]
    wavs = {sample: audio.wav_bytes(data.audio[2 * i]) for i, (sample, _) in enumerate(samples)}
    y = audio.npy_bytes(audio.labels_onehot(data))
    parameters = audio.MFE_PARAMETERS
    return emu.AudioProject(audio.npy_bytes(x), y, samples, parameters, audio.FRAMES, audio.FILTERS, wavs=wavs)


def cam_pass(model_path: Path, x: np.ndarray, labels: np.ndarray, batch: int) -> float:
    """Windows/s: the job's explainer (auto method, faithfulness on, true classes given) on the windows,
    batched (traced first)."""
    settings = Settings(features=[Path("X.npy")]).with_defaults()
    explainer = Explainer(load_model(model_path), audio.CLASSES, **settings.explainer_options())
    inputs, truths = x.reshape(len(x), *explainer.adapter.image_shape), labels.astype(np.int32)
    explainer.maps(inputs[:batch], np.full(batch, PREDICTED, np.int32), truths[:batch])
    start = time.perf_counter()
    for i in range(0, len(inputs), batch):
        chunk = inputs[i : i + batch]
        explainer.maps(chunk, np.full(len(chunk), PREDICTED, np.int32), truths[i : i + batch])
    return len(inputs) / (time.perf_counter() - start)


def job_rate(model_path: Path, project: emu.AudioProject, work: Path, batch: int, **options) -> float:
    """Windows/s: the job from the download of the features to deploy.zip, with the model loaded and
    traced first; options: settings (faithfulness=False, overlays="mistakes")."""
    model_zip = io.BytesIO()
    with zipfile.ZipFile(model_zip, "w") as archive:
        archive.write(model_path, "model.h5")
    with emu.Emulator(b"", model_zip.getvalue(), classes=audio.CLASSES, audio=project) as studio:
        given = Settings(
            api_key=studio.api_key, host=studio.host, out=work / "out", work_dir=work, batch_size=batch, **options
        )
        source = sources.from_api_key(given)
        settings = source.settings.with_defaults()
        explainer = Explainer(load_model(settings.model), settings.classes, **settings.explainer_options())
        # Traced as the job runs it: with true classes (the pass that also explains mistakes).
        zeros = np.zeros((batch, *explainer.adapter.image_shape), np.float32)
        explainer.maps(zeros, np.full(batch, PREDICTED, np.int32), np.zeros(batch, np.int32))
        start = time.perf_counter()
        with source.fetch(explainer.classes) as windows:
            Job(explainer, settings).run(windows)
        elapsed = time.perf_counter() - start
    return len(project.samples) * 2 / elapsed


def audio_lines(windows: int = 1000, batch: int = 32) -> list[str]:
    """The audio row of make bench, as Markdown lines."""
    data = audio.clips(windows, seed=21)
    x = audio.features(data)
    lines = [
        f"Audio (keyword fixtures, MFE 99x40; {windows} windows, two per sample, each sample's WAV fetched for "
        "the player; the job as with an API key against the local emulator):",
        "",
        "| model | job windows/s (pictures and players) | --faithfulness 0 | --overlays mistakes (no pictures "
        "here: every window right) | CAM + faithfulness pass alone windows/s | job / that (goal >= 0.5) |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="gradcam-audio-") as tmp:
        for kind in ("1d", "2d"):
            path = FIXTURES / f"keywords_{kind}.h5"
            rates = [
                job_rate(path, _project(data, x), Path(tmp) / f"{kind}-{i}", batch, **options)
                for i, options in enumerate([{}, {"faithfulness": False}, {"overlays": "mistakes"}])
            ]
            floor = cam_pass(path, x, data.labels, batch)
            job = " | ".join(f"{rate:.0f}" for rate in rates)
            lines.append(f"| {kind.upper()} | {job} | {floor:.0f} | {rates[0] / floor:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    print("\n".join(audio_lines(args.windows, args.batch)))


if __name__ == "__main__":
    main()
