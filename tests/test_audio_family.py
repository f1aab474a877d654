"""The audio default method (`--method auto`, gradcam.engine.cam.auto_method) on the whole fixture
family (tests/fixtures/make_audio_family.py): EI's 1-D and 2-D conv models and a global-average-pooling
variant, on MFE and MFCC, with a burst among sounds of no class or alone. bench/audio_methods.py
prints every method's numbers; these tests hold the default to them."""

import functools
import json
import zipfile

import numpy as np
import pytest
import tf_keras

from gradcam.cli import main
from gradcam.engine.cam import auto_method
from gradcam.engine.tasks import PREDICTED
from gradcam.explainer import Explainer
from tests import audio, helpers
from tests.fixtures.make_audio_family import MEMBERS, Member
from tests.helpers import ROOT

WINDOWS = 120


@functools.cache
def _model(member: Member):
    return tf_keras.models.load_model(member.path)


@functools.cache
def _windows(member: Member) -> tuple[audio.Clips, np.ndarray]:
    return member.held_out(WINDOWS)


def _peaks_in_burst(model, member: Member, method: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """Per window: whether the map peaks in the burst's frames (one frame of slack); whether the
    model is right; the method auto chose."""
    data, x = _windows(member)
    explainer = Explainer(
        model, audio.CLASSES, method=method, reads_features=True, dsp=member.block, faithfulness=False
    )
    maps = explainer.maps(x.reshape(len(x), audio.FRAMES, member.columns, 1), np.full(len(x), PREDICTED, np.int32))
    spans = audio.burst_frames(data)
    peaks = member.peaks([m.cam for m in maps])
    frames = np.array([-10 if peak is None else peak.frame for peak in peaks])  # a blank map points nowhere
    hits = (frames >= spans[:, 0] - 1) & (frames <= spans[:, 1] + 1)
    correct = np.array([m.probabilities.argmax() for m in maps]) == data.labels
    return hits, correct, explainer.method


def test_auto_is_gradcam_along_time_and_over_cepstra_and_hirescam_over_time_and_frequency():
    assert auto_method(features=False, two_d=True) == "gradcam", "images"
    assert auto_method(features=True, two_d=False) == "gradcam"
    assert auto_method(features=True, two_d=True) == "hirescam"
    assert auto_method(features=True, two_d=True, cepstra=True) == "gradcam"


# A lone burst under MFCC's normalisation: see the last test (measured on gap1d-mfcc-lone: 0.80 to 0.85).
def test_auto_reads_the_kind_of_model_from_the_job_not_from_a_flat_input():
    """Edge Impulse's image models take a flat input too (the shapes example): still images."""
    image_model = tf_keras.models.load_model(ROOT / "examples" / "shapes" / "model.h5", compile=False)
    assert image_model.inputs[0].shape.rank == 2, "a flat input"
    assert Explainer(image_model, method="auto").method == "gradcam"
    keywords_2d = tf_keras.models.load_model(ROOT / "tests" / "fixtures" / "keywords_2d.h5")
    assert Explainer(keywords_2d, audio.CLASSES, method="auto", reads_features=True).method == "hirescam"
    assert Explainer(keywords_2d, audio.CLASSES, method="auto", reads_features=True, dsp="mfcc").method == "gradcam"


AUTO_HOLDS = [m for m in MEMBERS if (m.block, m.design) != ("mfcc", "lone")]


@pytest.mark.parametrize("member", AUTO_HOLDS, ids=lambda m: m.name)
def test_the_default_points_in_time_on_every_member_where_the_features_keep_the_evidence_in_place(member):
    hits, correct, method = _peaks_in_burst(_model(member), member)
    print(member.name, method, "peak in the burst", hits[correct].mean())
    assert correct.mean() >= 0.95
    assert method == ("hirescam" if member.architecture == "conv2d" and member.block == "mfe" else "gradcam")
    assert hits[correct].mean() >= 0.85


DISTRACTED = [m for m in MEMBERS if m.design == "distractors"]


@pytest.mark.parametrize("member", DISTRACTED, ids=lambda m: m.name)
def test_re_initialised_copies_do_not_point_in_time(member):
    """With sounds of no class in the clip, an energy detector hits the burst a third of the time; the
    mean of three copies (one draw swings by +-0.15) stays <= 0.45. (With a lone burst in noise any
    map that follows loudness finds it: that design cannot tell a model from its random copy.)"""
    _, x = _windows(member)
    shares = [_peaks_in_burst(helpers.randomised(_model(member), x, seed), member)[0].mean() for seed in range(3)]
    print(member.name, "re-initialised", shares)
    assert np.mean(shares) <= 0.45


def test_where_mfcc_normalisation_spreads_a_lone_burst_no_method_points_and_the_maps_are_not_trusted():
    """MFCC normalises each cepstrum over the window: a lone burst shifts every frame, and the model
    reads the class anywhere. No method then points at the burst, and faithfulness says so."""
    member = next(m for m in MEMBERS if m.name == "conv1d-mfcc-lone")
    for method in ("gradcam", "hirescam", "layercam"):
        hits, correct, _ = _peaks_in_burst(_model(member), member, method)
        assert hits[correct].mean() < 0.85, method
    _, x = _windows(member)
    explainer = Explainer(
        _model(member), audio.CLASSES, method="auto", reads_features=True, dsp="mfcc", fill="background"
    )
    maps = explainer.maps(x.reshape(len(x), audio.FRAMES, audio.CEPSTRA, 1), np.full(len(x), PREDICTED, np.int32))
    assert np.mean([m.faithfulness for m in maps]) < 0.5


def test_offline_the_dsp_block_is_named_by_a_flag_and_mfcc_maps_get_gradcam(tmp_path, capsys):
    member = next(m for m in MEMBERS if m.name == "conv2d-mfcc-distractors")
    data = audio.clips(12, seed=5)
    np.save(tmp_path / "X.npy", audio.features(data, "mfcc"))
    base = ["--model", str(member.path), "--features", str(tmp_path / "X.npy"), "--classes", ",".join(audio.CLASSES)]
    defaults = {}
    for named in ([], ["--dsp-block", "mfcc"]):
        out = tmp_path / f"out{len(named)}"
        assert main([*base, *named, "--out", str(out)]) == 0
        run = json.loads(zipfile.ZipFile(out / "deploy.zip").read("results.json"))["run"]
        # auto's default, which its calibration keeps where it agrees with the model's own evidence
        defaults[tuple(named)] = run["auto"]["candidates"][0]["method"]
        assert run["method"] in {c["method"] for c in run["auto"]["candidates"]}
    assert defaults == {(): "hirescam", ("--dsp-block", "mfcc"): "gradcam"}
    assert main(["--model", str(member.path), "--dsp-block", "mfcc", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.endswith(
        "error: --dsp-block goes with --features (the types of the DSP blocks that computed them)\n"
    )
