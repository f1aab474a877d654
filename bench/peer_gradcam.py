"""pytorch-grad-cam doing the block's work, written as its README shows: run by bench/peers.py in
a virtual environment of its own (torch and grad-cam are not dependencies of this project).

For every image of an Edge Impulse export: one batched GradCAM pass for the predicted class,
show_cam_on_image, and cv2.imwrite into correct/ or incorrect/. With --road, the peer's own
per-image faithfulness metric (ROADCombined) too. The model is bench/peers.py's small CNN, its
weights copied from the Keras model the block explains (weights.npz), so both explain one function.

    .venv-peer/bin/python bench/peer_gradcam.py --export export.zip --weights weights.npz --out out
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import nn


class SmallCnn(nn.Module):
    """bench/peers.py's Keras model, layer for layer: three 3x3 conv stages, average pool, dense."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for i in range(3):
            kernel, bias = weights[f"conv{i}_kernel"], weights[f"conv{i}_bias"]
            conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
            conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
            conv.bias.data = torch.from_numpy(bias)
            self.convs.append(conv)
        self.head = nn.Linear(*weights["dense_kernel"].shape)
        self.head.weight.data = torch.from_numpy(weights["dense_kernel"].T.copy())
        self.head.bias.data = torch.from_numpy(weights["dense_bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if i < len(self.convs) - 1:
                x = nn.functional.max_pool2d(x, 2)
        return self.head(x.mean(dim=(2, 3)))  # logits; the Keras model ends in their softmax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--classes", required=True, help="the model's classes in output order, comma separated")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--road", action="store_true", help="score each map with ROADCombined")
    parser.add_argument("--keep", type=int, default=0, help="save the first N maps and softmax outputs (checks)")
    args = parser.parse_args()
    classes = args.classes.split(",")

    model = SmallCnn(dict(np.load(args.weights))).eval()
    cam = GradCAM(model=model, target_layers=[model.convs[-1]])
    road = ROADCombined(percentiles=[20, 40, 60, 80])
    for folder in ("correct", "incorrect"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    kept_maps, kept_outputs, scores = [], [], []
    with zipfile.ZipFile(args.export) as archive:
        files = [f for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == "testing"]
        for start in range(0, len(files), args.batch):
            batch = files[start : start + args.batch]
            images = [cv2.imdecode(np.frombuffer(archive.read(f["path"]), np.uint8), cv2.IMREAD_COLOR) for f in batch]
            rgb = [np.float32(image[..., ::-1]) / 255 for image in images]
            tensor = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2)
            maps = cam(input_tensor=tensor, targets=None)  # each image's predicted class
            predicted = cam.outputs.argmax(dim=1).tolist()
            for f, image, heat, index in zip(batch, rgb, maps, predicted, strict=True):
                picture = show_cam_on_image(image, heat, use_rgb=True)
                folder = "correct" if classes[index] == f["label"]["label"] else "incorrect"
                cv2.imwrite(str(args.out / folder / f"{Path(f['path']).name}.jpg"), picture[..., ::-1])
            if args.road:
                targets = [ClassifierOutputSoftmaxTarget(i) for i in predicted]
                scores += list(road(tensor, maps, targets, model))
            if len(kept_maps) < args.keep:
                kept_maps += list(maps)
                kept_outputs += list(torch.softmax(cam.outputs, dim=1).detach().numpy())
    if args.keep:
        kept = {"maps": np.stack(kept_maps[: args.keep]), "outputs": np.stack(kept_outputs[: args.keep])}
        np.savez(args.out / "kept.npz", **kept)
    if args.road:
        (args.out / "road.json").write_text(json.dumps([float(s) for s in scores]))
    print(f"{len(files)} images")


if __name__ == "__main__":
    main()
