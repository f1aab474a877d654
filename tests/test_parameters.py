"""parameters.json and .ei-block-config: valid per the block contract, and every parameter reaches the job."""

import contextlib
import dataclasses
import json

import jsonschema
import pytest

from gradcam import cli
from gradcam.edge import dataset, studio
from gradcam.engine import cam, maps, preprocess
from gradcam.job import pictures
from gradcam.settings import Settings
from tests.helpers import ROOT, SHAPES

PARAMETER_TYPES = ["boolean", "flag", "int", "float", "select", "string"]

# Section 2 of the contract doc (shared/docs/edge-impulse-block.md), as a JSON schema.
SCHEMA = {
    "type": "object",
    "required": ["version", "type", "info"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "type": {"const": "deploy"},
        "info": {
            "type": "object",
            "required": [
                "name",
                "description",
                "category",
                "cliArguments",
                "supportsEonCompiler",
                "mountLearnBlock",
                "showOptimizations",
            ],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": {"type": "string", "minLength": 1},
                "category": {"enum": ["library", "firmware"]},
                "integrateUrl": {"type": "string"},
                "cliArguments": {"type": "string"},
                "supportsEonCompiler": {"type": "boolean"},
                "mountLearnBlock": {"type": "boolean"},
                "showOptimizations": {"type": "boolean"},
                "privileged": {"type": "boolean"},
            },
        },
        "parameters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "value", "type", "param"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": ["string", "number", "boolean"]},
                    "type": {"enum": PARAMETER_TYPES},
                    "help": {"type": "string"},
                    "param": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                    "valid": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "required": ["label", "value"],
                                    "additionalProperties": False,
                                    "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
                                },
                            ]
                        },
                    },
                    "optional": {"type": "boolean"},
                    "readonly": {"type": "boolean"},
                    "showIf": {
                        "type": "object",
                        "required": ["parameter", "operator", "value"],
                        "properties": {
                            "parameter": {"type": "string"},
                            "operator": {"enum": ["eq", "neq"]},
                            "value": {"type": "string"},
                        },
                    },
                    "section": {"type": "string"},
                    "hint": {"type": "string"},
                    "placeholder": {"type": "string"},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def block():
    return json.loads((ROOT / "parameters.json").read_text())


def test_parameters_json_follows_the_contract(block):
    jsonschema.validate(block, SCHEMA)
    assert block["info"]["name"] == "Grad-CAM visualization"
    assert block["info"]["privileged"] is True, "the block needs the project's API key to export the test set"
    params = [p["param"] for p in block["parameters"]]
    assert len(params) == len(set(params))
    for p in block["parameters"]:
        if "showIf" in p:
            assert p["showIf"]["parameter"] in params


def _studio_argv(parameter: dict, value) -> list[str]:
    """How Studio passes one parameter's value on the command line (contract doc, section 2)."""
    flag = f"--{parameter['param']}"
    kind = parameter["type"]
    if kind == "boolean":
        return [flag, "1" if value else "0"]
    if kind == "flag":
        return [flag] if value else []
    return [flag, str(value)]


def _values(parameter: dict) -> list:
    valid = [v["value"] if isinstance(v, dict) else v for v in parameter.get("valid", [])]
    if parameter["type"] in ("boolean", "flag"):
        valid = [not parameter["value"]]
    return [parameter["value"], *valid]


def test_every_parameter_at_every_value_reaches_the_settings(block):
    for parameter in block["parameters"]:
        for value in _values(parameter):
            argv = ["--metadata", "/home/input/deployment-metadata.json", *_studio_argv(parameter, value)]
            settings = cli.settings_from(cli.parser().parse_args(argv))
            got = getattr(settings, parameter["param"].replace("-", "_"))
            convert = {"float": float, "int": int, "boolean": bool, "flag": bool}
            expected = convert.get(parameter["type"], lambda v: v or None)(value)
            assert got == expected, f"{parameter['param']}={value!r} reached the settings as {got!r}"


def test_all_parameters_at_once_in_any_order(block):
    argv = [arg for p in reversed(block["parameters"]) for arg in _studio_argv(p, p["value"])]
    settings = cli.settings_from(cli.parser().parse_args([*argv, "--metadata", "/x/deployment-metadata.json"]))
    assert (
        settings.alpha == 0.4 and settings.layer == "auto" and str(settings.metadata) == "/x/deployment-metadata.json"
    )


def test_every_flag_has_a_settings_field():
    fields = {f.name for f in dataclasses.fields(Settings)}
    destinations = {action.dest for action in cli.parser()._actions if action.dest != "help"}
    assert destinations <= fields, destinations - fields


def test_api_key_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.setenv("EI_API_KEY", "ei_from_env")
    assert cli.settings_from(cli.parser().parse_args([])).api_key == "ei_from_env"
    assert cli.settings_from(cli.parser().parse_args(["--api-key", "ei_flag"])).api_key == "ei_flag"
    assert "ei_from_env" not in repr(cli.settings_from(cli.parser().parse_args([])))


def test_cli_choices_match_the_modules_they_feed():
    assert tuple(cam.METHODS) == (*cli.METHODS, *cli.INPUT_METHODS) and cli.AUTO not in cam.METHODS
    assert cli.POOLINGS is cam.POOLINGS and cli.NORMALIZATIONS is maps.NORMALIZATIONS
    assert cli.RESIZE_MODES is preprocess.RESIZE_MODES and cli.INPUT_SCALINGS is preprocess.INPUT_SCALINGS
    assert cli.CATEGORIES is dataset.CATEGORIES and cli.LAYOUTS is pictures.LAYOUTS
    assert cli.DEFAULT_HOST is studio.DEFAULT_HOST


def test_ei_block_config_is_the_v2_format():
    config = json.loads((ROOT / ".ei-block-config").read_text())
    assert config["version"] == 2
    assert set(config["config"]["edgeimpulse.com"]) == {"organizationId", "id"}


def test_dockerfile_runs_main_py_outside_home():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert 'ENTRYPOINT ["python3", "-u", "main.py"]' in lines
    workdir = [line.split()[1] for line in lines if line.startswith("WORKDIR")]
    assert workdir and not any(w.startswith("/home") for w in workdir)


# A bad value for every parameter Studio can pass, with the words its one-line error must hold.
BAD_VALUES = {
    "method": ("nope", "argument --method: invalid choice: 'nope'"),
    "faithfulness": ("maybe", "argument --faithfulness: 'maybe': expected 1 or 0 (on or off)"),
    "evidence": ("sometimes", "argument --evidence: invalid choice: 'sometimes'"),
    "pooling-gradients": ("max", "argument --pooling-gradients: invalid choice: 'max'"),
    "heatmap-normalization": ("none", "argument --heatmap-normalization: invalid choice: 'none'"),
    "alpha": ("nan", "argument --alpha: nan is out of range: expected a number from 0 to 1"),
    "layout": ("grid", "argument --layout: invalid choice: 'grid'"),
    "overlays": ("some", "argument --overlays: invalid choice: 'some'"),
    "max-overlay-size": ("-5", "argument --max-overlay-size: -5 is out of range: expected an integer >= 0"),
    "regression-threshold": ("-0.5", "argument --regression-threshold: -0.5 is out of range: expected a number >= 0"),
    "category": ("validation", "argument --category: invalid choice: 'validation'"),
    "layer": ("no_such_layer", "layer 'no_such_layer': no such layer in the model"),
    "explain": ("device", "argument --explain: invalid choice: 'device'"),
}

# Flags that are not in parameters.json, at bad values.
BAD_FLAGS = [
    (["--alpha", "2"], "argument --alpha: 2 is out of range: expected a number from 0 to 1"),
    (["--alpha", "-0.1"], "argument --alpha: -0.1 is out of range: expected a number from 0 to 1"),
    (["--alpha", "strong"], "argument --alpha: 'strong' is not a number"),
    (["--regression-threshold", "inf"], "argument --regression-threshold: inf is out of range"),
    (
        ["--detection-threshold", "1.5"],
        "argument --detection-threshold: 1.5 is out of range: expected a number from 0 to 1",
    ),
    (["--batch-size", "0"], "argument --batch-size: 0 is out of range: expected an integer from 1 to 1024"),
    (["--batch-size", "2.5"], "argument --batch-size: '2.5' is not an integer"),
    (["--classes", "circle,circle,triangle"], "argument --classes: circle named twice"),
    (["--classes", " , "], "argument --classes: ' , ': expected class names in model output order"),
    (["--export-timeout", "0"], "argument --export-timeout: 0 is out of range: expected a number > 0"),
    (["--project-id", "-3"], "argument --project-id: -3 is out of range: expected an integer >= 1"),
    (["--out", "README.md"], "argument --out: README.md is a file; expected a folder"),
    (["--work-dir", "README.md"], "argument --work-dir: README.md is a file; expected a folder"),
    (["--target-class", "hexagon"], "target class 'hexagon': the model's classes are circle, square, triangle"),
    (
        ["--feature-shapes", "99x40,13"],
        "argument --feature-shapes: '99x40,13': expected frames x columns per DSP block, as 49x13,99x40",
    ),
    (["--feature-shapes", "0x40"], "argument --feature-shapes: '0x40': expected frames x columns per DSP block"),
]


def test_every_parameter_has_a_bad_value_test(block):
    assert {p["param"] for p in block["parameters"]} == set(BAD_VALUES)


def _refused(argv: list[str], tmp_path, capsys) -> str:
    """Run the offline job with argv; it must stop before any work with exit 2 and one line."""
    out = tmp_path / "out"
    job = ["--model", str(SHAPES / "model.h5"), "--dataset", str(SHAPES / "export.zip"), "--out", str(out)]
    with contextlib.chdir(ROOT):
        try:
            code = cli.main([*job, *argv])
        except SystemExit as exc:
            code = exc.code
    assert code == 2
    assert not (out / "deploy.zip").exists()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("param", sorted(BAD_VALUES))
def test_a_bad_parameter_value_is_refused_in_one_line(param, tmp_path, capsys):
    value, message = BAD_VALUES[param]
    assert message in _refused([f"--{param}", value], tmp_path, capsys)


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_flag_is_refused_in_one_line(argv, message, tmp_path, capsys):
    assert message in _refused(argv, tmp_path, capsys)
