"""The deployment-block contract: deployment-metadata.json and the input/output folders.

Studio runs the container with `--metadata <input>/deployment-metadata.json`; the input folder
holds `trained.h5.zip`, the output folder must receive `deploy.zip`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gradcam.edge.impulse import ImageResize
from gradcam.errors import GradcamError, not_found

NO_KEY = (
    "deployment-metadata.json has no project.apiKey: enable 'privileged' for this block "
    "(organisation > Custom blocks > Deployment) and create a development API key in the project "
    "(Dashboard > Keys)"
)


@dataclass(frozen=True)
class DeploymentMetadata:
    project_id: int
    project_name: str
    api_key: str | None
    studio_host: str | None
    classes: list[str]
    image_shape: tuple[int, int, int] | None  # (height, width, channels)
    resize: ImageResize  # the image input block's resize mode, method and crop anchor
    learn_blocks: list[tuple[int, str, str]]  # (id, type, name) of the impulse's learn blocks
    tflite_listed: bool  # tfliteModels lists an int8 or float32 trained.tflite
    input_dir: Path
    output_dir: Path

    @property
    def model_zip(self) -> Path:
        return self.input_dir / "trained.h5.zip"

    @property
    def tflite(self) -> Path | None:
        """The TFLite model Studio mounts (int8 or float32, as chosen under optimisations), when the
        metadata lists it or it is there; None when there is none to compare with."""
        path = self.input_dir / "trained.tflite"
        return path if self.tflite_listed or path.exists() else None

    def check_output(self) -> None:
        """Create the output folder when missing (`edge-impulse-blocks runner` mounts the project's
        folder as /home with input/ only), and fail before the long work if deploy.zip could not
        be written there."""
        out = self.output_dir
        if out.exists() and not out.is_dir():
            raise GradcamError(f"output folder {out} is not a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GradcamError(f"output folder {out} cannot be created: {exc.strerror or exc}") from None
        if not os.access(out, os.W_OK):
            raise GradcamError(f"output folder {out} is not writable")

    def require_key(self) -> str:
        if not self.api_key:
            raise GradcamError(NO_KEY)
        return self.api_key


def _image_shape(impulse: dict) -> tuple[tuple[int, int, int] | None, ImageResize]:
    image = next((b for b in impulse.get("inputBlocks", []) if b.get("type") == "image"), None)
    if image is None:
        return None, ImageResize()
    channels = 3
    for dsp in impulse.get("dspBlocks", []):
        metadata = dsp.get("metadata") or {}
        shape = (metadata.get("outputConfig") or {}).get("shape") or {}
        options = (metadata.get("dspConfig") or {}).get("options") or {}
        if shape.get("channels"):
            channels = int(shape["channels"])
        elif options.get("channels"):
            channels = 1 if options["channels"] == "Grayscale" else 3
    return (int(image["imageHeight"]), int(image["imageWidth"]), channels), ImageResize.of(image)


def read_metadata(path: str | Path) -> DeploymentMetadata:
    """Parse deployment-metadata.json; missing or malformed fields are named in the error."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GradcamError(not_found(path, "deployment metadata")) from None
    except (ValueError, OSError) as exc:
        raise GradcamError(f"{path}: not valid JSON ({exc})") from None
    try:
        project, folders = data["project"], data["folders"]
        impulse = data.get("impulse") or {}
        shape, resize = _image_shape(impulse)
        learn = [
            (int(b["id"]), str(b.get("type", "")), str(b.get("name", b.get("type", ""))))
            for b in impulse.get("learnBlocks", [])
        ]
        return DeploymentMetadata(
            project_id=int(project["id"]),
            project_name=str(project.get("name", "")),
            api_key=project.get("apiKey") or None,
            studio_host=project.get("studioHost"),
            classes=[str(c) for c in data.get("classes", [])],
            image_shape=shape,
            resize=resize,
            learn_blocks=learn,
            tflite_listed=any(
                Path(str(m.get("modelPath", ""))).name == "trained.tflite"
                and (m.get("details") or {}).get("modelType") in ("int8", "float32")
                for m in data.get("tfliteModels") or []
            ),
            input_dir=Path(folders["input"]),
            output_dir=Path(folders["output"]),
        )
    except KeyError as exc:
        raise GradcamError(
            f"{path}: missing field {exc.args[0]!r} (expected Edge Impulse deployment metadata)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise GradcamError(f"{path}: malformed field ({exc})") from None
