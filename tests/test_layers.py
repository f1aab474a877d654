"""Which layers can be explained, which the default explains, and how a user names and lists them."""

import re

import pytest
import tf_keras

from gradcam.cli import main
from gradcam.engine import layers
from gradcam.errors import GradcamError
from tests import helpers
from tests.fixtures import make_models

SHAPES_MODEL = helpers.SHAPES / "model.h5"


def _built(name: str):
    tf_keras.utils.set_random_seed(0)
    return make_models.build(name, 3)


def _names(model, spec="auto", height=None):
    height = height or model.inputs[0].shape[1]
    return [(layer.name, layer.size) for layer in layers.choose(layers.keras_candidates(model), spec, height)]


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "mobilenetv2_96",
            [
                ("model/block_13_expand_relu", "6x6"),
                ("model/block_6_expand_relu", "12x12"),
                ("model/block_3_expand_relu", "24x24"),
            ],
        ),
        (
            "mobilenetv1_96_gray",
            [("model/conv_pw_11_relu", "6x6"), ("model/conv_pw_5_relu", "12x12"), ("model/conv_pw_3_relu", "24x24")],
        ),
        (
            "mobilenetv2_160",
            [
                ("model/block_13_expand_relu", "10x10"),
                ("model/block_6_expand_relu", "20x20"),
                ("model/block_3_expand_relu", "40x40"),
            ],
        ),
    ],
)
def test_default_on_edge_impulse_mobilenets_fuses_three_stages_below_the_coarse_last_conv(name, expected):
    model = _built(name)
    assert _names(model, "last-conv") == [
        ("model/Conv_1" if "v2" in name else "model/conv_pw_13", "3x3" if "96" in name else "5x5")
    ]
    assert _names(model) == expected


def test_default_keeps_a_fine_last_conv_alone():
    model = tf_keras.models.load_model(SHAPES_MODEL, compile=False)
    assert _names(model, height=64) == [("conv2d_4", "16x16")] == _names(model, "last-conv", height=64)


def test_any_spatial_layer_can_be_named_by_path_or_unique_name_and_is_explained():
    model = _built("mobilenetv2_96")
    chosen = layers.choose(
        layers.keras_candidates(model), "block_13_expand_relu, model/block_2_add,model/block_6_pad", 96
    )
    assert [(layer.name, layer.kind) for layer in chosen] == [
        ("model/block_13_expand_relu", "ReLU"),
        ("model/block_6_pad", "ZeroPadding2D"),
        ("model/block_2_add", "Add"),
    ], "deepest first"


@pytest.mark.parametrize(
    "spec,message",
    [
        ("nope", "layer 'nope': no such layer in the model (run with --list-layers to see its layers)"),
        ("{flatten}", "layer '{flatten}' has no 1-D or 2-D spatial output (its output shape is (None, 144))"),
        ("model", "layer 'model' is a nested model: name one of its layers, e.g. model/Conv_1"),
        ("Conv_1,model/Conv_1", "layer 'Conv_1,model/Conv_1': a layer is named twice"),
    ],
)
def test_bad_layer_names_are_one_line_errors(spec, message):
    model = _built("mobilenetv2_96")
    flatten = model.layers[4].name  # flatten, flatten_1, ... as Keras numbers them
    with pytest.raises(GradcamError, match=f"^{re.escape(message.format(flatten=flatten))}$"):
        layers.choose(layers.keras_candidates(model), spec.format(flatten=flatten), 96)


def test_list_layers_prints_every_spatial_layer_and_marks_the_default(tmp_path, capsys):
    path = tmp_path / "model.h5"
    _built("mobilenetv2_96").save(path)
    assert main(["--model", str(path), "--list-layers"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in out[2:]}
    assert len(rows) == len(layers.spatial_layers(tf_keras.models.load_model(path, compile=False)))
    assert rows["model/block_6_expand_relu"].startswith("* ") and "12x12x96" in rows["model/block_6_expand_relu"]
    assert rows["model/Conv_1"].split()[-2:] == ["last", "conv"] and not rows["model/Conv_1"].startswith("*")
    assert sum(line.startswith("*") for line in out) == 3


def test_list_layers_without_a_model_is_an_error(capsys):
    assert main(["--list-layers"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --list-layers needs --model (or --metadata with the model in its input folder)"
    )
