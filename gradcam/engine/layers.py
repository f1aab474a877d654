"""The layers a model offers to explain, and which of them the default explains.

Any layer with a spatial output can be explained (convolutions, activations, batch norm, Add,
pooling), nested models included, named by path (`model/block_6_expand_relu`) or by a unique name:
a 2-D output (an image's rows and columns; a spectrogram's frames and frequencies), or a 1-D one
(an audio model's Conv1D over frames), seen as `frames x 1`.

The default (`auto`) is chosen by resolution, not by layer names. A network is a sequence of
*stages*: runs of layers at one output resolution, each ending where a stride halves it. The last
layer of a stage summarises it. Grad-CAM's maps are class-specific at deep stages but coarse, and
sharp at shallow ones but less specific (Jiang et al., LayerCAM, 2021). So:

- when the last convolution's map is fine enough (`FINE_ENOUGH` cells or more on its short side),
  that convolution is explained alone, as the original block does;
- otherwise (Edge Impulse's MobileNets end at 3x3 on 96x96 inputs) the default explains the last
  stage at stride <= 16 (1/16 of the input side: 6x6 on 96x96) with the chosen method, and fuses it
  with the two stages below it (12x12 and 24x24), explained with LayerCAM, never finer than 1/4 of
  the input side, where filters are edge detectors whatever the weights.

A model with a spatial output (FOMO) ends in a *head* of 1x1 convolutions applied to each cell
alone: their maps would only redraw the output. Its default explains the last layer before that
head (FOMO's cut point, 1/8 of the input) with the chosen method, fused with the stage below it.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass

from gradcam.errors import GradcamError

AUTO = "auto"
LAST_CONV = "last-conv"
CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv1D", "DepthwiseConv1D", "SeparableConv1D")
# Layers that only pad or crop: their outputs are not features at a stage's resolution.
_PADDING_TYPES = ("ZeroPadding2D", "Cropping2D", "ZeroPadding1D", "Cropping1D")
FINE_ENOUGH = 8  # a last convolution with at least this many cells on its short side is explained alone
COARSEST_STRIDE = 16  # the class-specific layer of the fused default: the last stage at this stride or finer
FINEST_STRIDE = 4  # no fused layer finer than 1/4 of the input side
FUSED_STAGES = 3  # the class-specific stage and the two below it


@dataclass(frozen=True)
class Node:
    """A layer of a graph that is not a Keras model (a TFLite file's operator): its name, its kind
    in Keras' terms (Conv2D, Add, ...), and whether it works on each cell alone (a FOMO head's)."""

    name: str
    kind: str
    pointwise: bool = False


@dataclass(frozen=True)
class Layer:
    """A layer that can be explained: its path from the outer model, and its output's size."""

    path: tuple
    height: int
    width: int
    channels: int

    @property
    def name(self) -> str:
        return path_name(self.path)

    @property
    def kind(self) -> str:
        node = self.path[-1]
        return node.kind if isinstance(node, Node) else type(node).__name__

    @property
    def size(self) -> str:
        return f"{self.height}x{self.width}"

    @property
    def cells(self) -> int:
        return cells(self.height, self.width)


def cells(height: int, width: int) -> int:
    """A map's cells on its short side; along time for a 1-D layer's (frames x 1)."""
    return height if width == 1 else min(height, width)


def path_name(path: tuple) -> str:
    return "/".join(layer.name for layer in path)


def children(model) -> list:
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _walk(model, prefix: tuple = ()) -> list[tuple]:
    """Every layer as a path (model's layer, nested layer, ...), depth first, in model order."""
    paths = []
    for layer in children(model):
        path = (*prefix, layer)
        paths.append(path)
        if is_model(layer):
            paths.extend(_walk(layer, path))
    return paths


def _spatial_shape(layer) -> tuple[int, int, int] | None:
    """(height, width, channels) of a 2-D output, (frames, 1, channels) of a 1-D one; else None."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    if len(shape) not in (3, 4) or None in shape[1:]:
        return None
    return (int(shape[1]), 1, int(shape[2])) if len(shape) == 3 else (int(shape[1]), int(shape[2]), int(shape[3]))


def spatial_layers(model) -> list[Layer]:
    """The layers with a spatial output, in model order (nested models' own layers, not the models)."""
    found = []
    for path in _walk(model):
        shape = None if is_model(path[-1]) else _spatial_shape(path[-1])
        if shape:
            found.append(Layer(path, *shape))
    return found


def last_conv(layers: list[Layer]) -> Layer:
    """The deepest convolution among `layers`."""
    convs = [layer for layer in layers if layer.kind in CONV_TYPES]
    if not convs:
        where = "run with --list-layers to see its layers" if layers else "it has no layer with a 1-D or 2-D output"
        raise GradcamError(f"the model has no convolution layer to explain ({where})")
    return convs[-1]


def stages(layers: list[Layer], end: Layer | None = None) -> list[Layer]:
    """The last layer of each run of layers at one resolution, shallow to deep, up to `end` (the
    last convolution)."""
    stop = layers.index(end or last_conv(layers))
    features = [layer for layer in layers[: stop + 1] if layer.kind not in _PADDING_TYPES]
    ends = [a for a, b in itertools.pairwise(features) if (a.height, a.width) != (b.height, b.width)]
    return [*ends, features[-1]]


def _pointwise(layer: Layer) -> bool:
    """A layer that works on each cell alone: a 1x1 convolution or an activation."""
    if isinstance(layer.path[-1], Node):
        return layer.path[-1].pointwise
    kernel = getattr(layer.path[-1], "kernel_size", None)
    return (layer.kind == "Conv2D" and tuple(kernel) == (1, 1)) or layer.kind in ("Softmax", "Activation")


def before_head(layers: list[Layer]) -> Layer | None:
    """The last layer before a spatial output's head of 1x1 convolutions (FOMO's cut point), or
    None when the model has no such head."""
    end = len(layers)
    while end > 0 and _pointwise(layers[end - 1]) and layers[end - 1].size == layers[-1].size:
        end -= 1
    return layers[end - 1] if 0 < end < len(layers) else None


def dense_layers(layers: list[Layer], input_height: int) -> list[Layer]:
    """The default for a spatial output, deepest first: the layer before the head, and the stages
    below it down to 1/FINEST_STRIDE of the input, FUSED_STAGES in all."""
    cut = before_head(layers)
    if cut is None:
        return [last_conv(layers)]
    finer = [s for s in stages(layers, cut)[:-1] if input_height / s.height >= FINEST_STRIDE]
    return [cut, *finer[::-1][: FUSED_STAGES - 1]]


def auto_layers(layers: list[Layer], input_height: int, dense: bool = False) -> list[Layer]:
    """The default's layers, deepest first. dense (a spatial output, FOMO): see `dense_layers`.
    Otherwise the last convolution alone when its map is fine enough, else the class-specific
    stage at stride <= COARSEST_STRIDE and up to two finer stages."""
    if dense:
        return dense_layers(layers, input_height)
    last = last_conv(layers)
    if last.cells >= FINE_ENOUGH:
        return [last]
    eligible = [s for s in stages(layers) if input_height / s.height >= FINEST_STRIDE]
    deep = [s for s in eligible if input_height / s.height <= COARSEST_STRIDE]
    if not deep:
        return [last]
    anchor = eligible.index(deep[-1])
    return eligible[max(0, anchor - FUSED_STAGES + 1) : anchor + 1][::-1]


def _named(layers: list[Layer], all_paths: list[tuple], name: str) -> Layer:
    matches = (
        [p for p in all_paths if path_name(p) == name]
        or [p for p in all_paths if p[-1].name == name]
        or [p for p in all_paths if p[-1].name.endswith(f"/{name}")]  # a TFLite layer without its scopes
    )
    if len(matches) != 1:
        found = "no such layer" if not matches else f"{len(matches)} layers of that name"
        close = [] if matches else difflib.get_close_matches(name, [layer.name for layer in layers], n=3, cutoff=0.8)
        guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise GradcamError(f"layer {name!r}: {found} in the model{guess} (run with --list-layers to see its layers)")
    for layer in layers:
        if layer.path == matches[0]:
            return layer
    if is_model(matches[0][-1]):
        inside = [layer for layer in layers if layer.path[: len(matches[0])] == matches[0]]
        raise GradcamError(f"layer {name!r} is a nested model: name one of its layers, e.g. {last_conv(inside).name}")
    shape = getattr(getattr(matches[0][-1], "output", None), "shape", "unknown")
    raise GradcamError(f"layer {name!r} has no 1-D or 2-D spatial output (its output shape is {shape})")


@dataclass(frozen=True)
class Candidates:
    """What a model offers to explain: its layers with a spatial output, in model order, and the
    paths of all its layers (to tell a name that is not explainable from one that does not exist)."""

    layers: list[Layer]
    paths: list[tuple]


def keras_candidates(model) -> Candidates:
    return Candidates(spatial_layers(model), _walk(model))


def choose(candidates: Candidates, spec: str | None, input_height: int, dense: bool = False) -> list[Layer]:
    """The layers to explain, deepest first. spec: `auto` (None), `last-conv`, or names `a,b,c` to fuse.
    dense: the model's output is spatial (FOMO)."""
    layers = candidates.layers
    spec = (spec or AUTO).strip()
    if spec == AUTO:
        return auto_layers(layers, input_height, dense)
    if spec == LAST_CONV:
        return [last_conv(layers)]
    chosen = [_named(layers, candidates.paths, name.strip()) for name in spec.split(",") if name.strip()]
    if len({layer.path for layer in chosen}) != len(chosen):
        raise GradcamError(f"layer {spec!r}: a layer is named twice")
    order = {layer.path: i for i, layer in enumerate(layers)}
    return sorted(chosen, key=lambda layer: order[layer.path], reverse=True)


def describe(candidates: Candidates, input_height: int, dense: bool = False) -> str:
    """The table `--list-layers` prints: every explainable layer, with the default's marked."""
    layers = candidates.layers
    default = {layer.path for layer in auto_layers(layers, input_height, dense)}
    last = last_conv(layers).path
    width = max(len(layer.name) for layer in layers)
    lines = [f"  {'layer':<{width}}  {'type':<20} {'output':>14}"]
    for layer in layers:
        marks = ["default" if layer.path in default else "", "last conv" if layer.path == last else ""]
        shape = f"{layer.size}x{layer.channels}"
        lines.append(
            f"{'*' if layer.path in default else ' '} {layer.name:<{width}}  {layer.kind:<20} {shape:>14}  "
            + ", ".join(m for m in marks if m)
        )
    return "\n".join(line.rstrip() for line in lines)
