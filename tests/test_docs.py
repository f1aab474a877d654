"""Docs that cannot drift: the parameter tables against the command line and parameters.json, the
column tables against what the job writes, and every command the README quotes, run."""

import argparse
import ast
import csv
import json
import os
import re
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gradcam import cli
from gradcam.report import columns
from tests import audio, docs, helpers, motion
from tests.fixtures.make_motion_family import Member
from tests.helpers import ROOT, SHAPES

PARAMETERS = json.loads((ROOT / "parameters.json").read_text())["parameters"]
SET_UP = ("make demo", "make test")  # what the README's set-up runs: the suite itself
RUN_BY_THE_CONTAINER_TEST = ("docker build", "docker run")  # tests/test_container.py runs them


# --- The parameter tables ---


def _flags() -> dict[str, argparse.Action]:
    return {a.option_strings[-1]: a for a in cli.parser()._actions if a.option_strings and a.dest != "help"}


def _shown(default) -> str | None:
    """A default as the tables write it; None where a flag has none to show (off, or decided later)."""
    if default is None or default is False:
        return None
    if default is True:
        return "1"
    return f"{default:g}" if isinstance(default, float) else str(default)


def parameter_table_problems(text: str, every_flag: bool) -> list[str]:
    """What a page's parameter tables get wrong against the command line and parameters.json:
    flags missing (every_flag) or unknown, Studio fields, defaults, and values left out."""
    flags, studio = _flags(), {f"--{p['param']}": p for p in PARAMETERS}
    rows = {cells[0].strip("`"): cells for cells in docs.table_rows(text) if cells[0].startswith("`--")}
    problems = [f"{flag}: no such flag" for flag in rows.keys() - flags.keys()]
    if every_flag:
        problems += [f"{flag}: not documented" for flag in flags.keys() - rows.keys()]
    for flag, (_, field, default, _what) in ((f, c) for f, c in rows.items() if f in flags):
        action, param = flags[flag], studio.get(flag)
        if field != (param["name"] if param else ""):
            problems.append(f"{flag}: Studio field {field!r}, expected {param['name'] if param else ''!r}")
        shown = _shown(action.default)
        if shown is not None and default != f"`{shown}`":
            problems.append(f"{flag}: default {default!r}, expected `{shown}`")
        if param and _shown(param["value"]) != shown:
            problems.append(f"{flag}: parameters.json's default {param['value']!r}, the flag's {shown!r}")
        values = set(action.choices or ())
        if param and {v["value"] for v in param.get("valid", [])} - values:
            problems.append(f"{flag}: parameters.json offers values the flag refuses")
        row = " | ".join(rows[flag])
        if every_flag:
            problems += [f"{flag}: value {value!r} not documented" for value in values if f"`{value}`" not in row]
    return problems


def test_the_parameters_page_documents_every_flag_as_the_command_line_has_it():
    assert parameter_table_problems((docs.DOCS / "parameters.md").read_text(), every_flag=True) == []


def test_the_readmes_parameter_table_agrees_with_the_command_line():
    rows = [cells for cells in docs.table_rows(docs.README.read_text()) if cells[0].startswith("`--")]
    assert len(rows) >= 6
    assert parameter_table_problems(docs.README.read_text(), every_flag=False) == []


def test_every_studio_field_is_a_documented_flag():
    documented = {cells[0].strip("`") for cells in docs.table_rows((docs.DOCS / "parameters.md").read_text())}
    assert {f"--{p['param']}" for p in PARAMETERS} <= documented


def test_a_broken_parameter_table_is_caught():
    text = (docs.DOCS / "parameters.md").read_text()
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("| `--alpha`"))
    broken = broken.replace("| `--layout` | Image layout | `blend` |", "| `--layout` | Layout | `panel` |")
    broken = broken.replace("`fit-long`", "fit-long").replace("| `--tflite` |", "| `--tflite-model` |")
    assert sorted(parameter_table_problems(broken, every_flag=True)) == [
        "--alpha: not documented",
        "--layout: Studio field 'Layout', expected 'Image layout'",
        "--layout: default '`panel`', expected `blend`",
        "--resize-mode: value 'fit-long' not documented",
        "--tflite-model: no such flag",
        "--tflite: not documented",
    ]


# --- What the block says it explains ---

# What the job explains, each with a test that runs it: the words a user reads for it.
EXPLAINED = {
    "classification": "test_offline_job.py",
    "regression": "test_offline_job.py (test_regression_uses_the_error_threshold)",
    "FOMO": "test_detection.py",
    "audio": "test_features.py",
    "motion": "test_motion_job.py",
    "TFLite": "test_tflite.py",
}


def test_the_studio_description_names_every_kind_of_model_the_block_explains():
    """The first text a Studio user reads when choosing the block (parameters.json's description)."""
    description = json.loads((ROOT / "parameters.json").read_text())["info"]["description"]
    assert [kind for kind in EXPLAINED if kind.lower() not in description.lower()] == []
    assert "convolution" not in description, "models without a convolution are explained at their input"


def test_no_page_says_a_model_without_a_convolution_is_refused():
    """Dense models on spectral features and on motion features are explained at their input
    (test_features.py, test_motion_job.py): no page may still say they are refused."""
    pages = [docs.README, *sorted(docs.DOCS.glob("*.md"))]
    found = [
        page.name
        for page in pages
        for said in re.split(r"\n\s*\n|\n- ", page.read_text())  # paragraphs and list items
        if "efused" in said and "no convolution" in said
    ]
    assert found == []


# --- The column tables ---


def _run_keys() -> set[str]:
    """The keys run_document writes, read from its source: every string key of its dicts."""
    tree = ast.parse(Path(columns.__file__).read_text())
    [function] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "run_document"]
    dicts = [d for d in ast.walk(function) if isinstance(d, ast.Dict)]
    return {k.value for d in dicts for k in d.keys if isinstance(k, ast.Constant)}


WRITTEN = {
    "results.csv": {*columns.RESULT_FIELDS, *columns.WINDOW_FIELDS, *columns.DETECTION_FIELDS, "score:<class>"},
    "objects.csv": set(columns.OBJECT_FIELDS),
    "results.json's `run`": _run_keys(),
}


def column_table_problems(text: str) -> list[str]:
    """Per table: the columns (and run keys) the job writes that the page leaves out, and those it
    names that the job never writes."""
    sections = {line[3:]: docs.section(text, line[3:]) for line in text.splitlines() if line.startswith("## ")}
    problems = []
    for heading, written in WRITTEN.items():
        tables = [body for title, body in sections.items() if title.startswith(heading)]
        documented = {name for body in tables for cells in docs.table_rows(body) for name in docs.names(cells[0])}
        problems += [f"{heading}: {name} not documented" for name in sorted(written - documented)]
        problems += [f"{heading}: {name} is never written" for name in sorted(documented - written)]
    return problems


def test_every_column_the_job_writes_is_documented():
    assert {"peak_hz", "map_agreement", "score:<class>"} <= WRITTEN["results.csv"]
    assert {"looks", "weights", "tflite"} <= WRITTEN["results.json's `run`"]
    assert column_table_problems((docs.DOCS / "outputs.md").read_text()) == []


def test_a_broken_column_table_is_caught():
    text = (docs.DOCS / "outputs.md").read_text()
    broken = text.replace("| `peak_filter`, `peak_hz` |", "| `peak_filter` |").replace("| `kind` |", "| `type` |")
    assert column_table_problems(broken) == [
        "results.csv: peak_hz not documented",
        "objects.csv: kind not documented",
        "objects.csv: type is never written",
    ]


# --- The README's commands ---


def test_every_readme_command_is_run_by_a_test():
    quoted = docs.commands(docs.README.read_text())
    assert len(quoted) >= 7
    elsewhere = SET_UP + RUN_BY_THE_CONTAINER_TEST
    assert [c for c in quoted if not c.startswith(elsewhere)] == [c for c in quoted if c in _run_here(quoted)]


def _run_here(quoted: list[str]) -> list[str]:
    return [c for c in quoted if c.startswith((".venv/bin/python main.py", "EI_API_KEY="))]


def _images(folder: Path) -> int:
    os.symlink(SHAPES / "model.h5", folder / "model.h5")
    helpers.write_export(folder / "export.zip", helpers.bundled_samples(12))
    return 12


def _audio(folder: Path) -> int:
    os.symlink(ROOT / "tests" / "fixtures" / "keywords_1d.h5", folder / "model.h5")
    data = audio.clips(8, seed=11)
    np.save(folder / "X_testing.npy", audio.features(data))
    np.save(folder / "y_testing.npy", audio.labels_4col(data))
    return 8


def _motion(folder: Path) -> int:
    os.symlink(Member("wide", "raw", "distractor").path, folder / "model.h5")
    data = motion.windows(9, 21)
    np.save(folder / "X_testing.npy", motion.features(data, "raw"))
    np.save(folder / "y_testing.npy", motion.labels_4col(data))
    return 9


def _files_for(command: str):
    """The README's files, made under the names it gives them: what its command is about."""
    if "--dataset" in command:
        return _images
    if "--axes" in command:
        return _motion
    return _audio


@pytest.mark.parametrize(
    "command",
    _run_here(docs.commands(docs.README.read_text())),
    ids=lambda c: "api-key" if c.startswith("EI_API_KEY") else _files_for(c).__name__.strip("_"),
)
def test_the_readmes_command_runs(command, tmp_path, monkeypatch, request):
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if "=" in w and w[0].isupper())
    words = [w for w in words if not ("=" in w and w[0].isupper())]
    assert words[:2] == [".venv/bin/python", "main.py"], command
    monkeypatch.chdir(tmp_path)
    if "EI_API_KEY" in env:
        studio = request.getfixturevalue("studio")
        env["EI_API_KEY"] = studio.api_key if env["EI_API_KEY"] == "ei_..." else env["EI_API_KEY"]
        result, samples = helpers.run_main(*words[2:], "--host", studio.host, env=env), None
    else:
        samples = _files_for(command)(tmp_path)
        result = helpers.run_main(*words[2:], env=env)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "output" / "deploy.zip") as archive:
        rows = list(csv.DictReader(archive.read("results.csv").decode().splitlines()))
        assert "index.html" in archive.namelist()
    assert rows and (samples is None or len(rows) == samples)
    header = set(rows[0]) - {k for k in rows[0] if k.startswith("score:")}
    assert header <= WRITTEN["results.csv"]
