"""Loading a model by its content, not its name: a Keras `.h5` (or `.keras`), a TFLite flatbuffer,
a SavedModel folder, or a zip of any of them (Studio's `trained.h5.zip`, `trained.savedmodel.zip`).

Edge Impulse writes Keras 2 files; Keras 3 cannot load all of them (a MobileNetV2 nested in a
Sequential fails on BatchNormalization), so `.h5` goes through `tf_keras` first. A Keras SavedModel
(with `keras_metadata.pb`, as Edge Impulse's Keras learn blocks write it) loads through tf_keras; a
plain TensorFlow SavedModel (bring-your-own-model) is converted to a float32 TFLite model and
explained through its twin. A TFLite file is read as a graph (gradcam.engine.tflite_graph).
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from gradcam.engine import tflite_graph
from gradcam.engine.tflite_graph import Graph
from gradcam.errors import GradcamError, not_found

ONNX = "ONNX models are not supported: give the project's TFLite model (trained.tflite) or its SavedModel"


def is_tflite(path: Path) -> bool:
    """A TFLite flatbuffer: its identifier, TFL3, follows the 4-byte root offset."""
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"TFL3"


def _keras_file(path: Path):
    from gradcam.engine.model import keras_modules  # TensorFlow, once a Keras model is to be loaded

    loaders = keras_modules() if path.suffix.lower() in (".h5", ".hdf5") else keras_modules()[::-1]
    errors = []
    for module in loaders:
        try:
            return module.models.load_model(str(path), compile=False)
        except Exception as exc:
            errors.append(f"{module.__name__}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise GradcamError(f"{path}: cannot load the Keras model ({'; '.join(errors)})")


def _saved_model(folder: Path, shown: Path):
    """A Keras SavedModel through tf_keras; a plain one as a float32 TFLite graph."""
    if (folder / "keras_metadata.pb").is_file():
        import tf_keras

        try:
            return tf_keras.models.load_model(str(folder), compile=False)
        except Exception as exc:
            raise GradcamError(f"{shown}: cannot load the Keras SavedModel ({str(exc).splitlines()[0]})") from None
    import tensorflow as tf

    try:
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(str(folder)).convert()
    except Exception as exc:
        raise GradcamError(f"{shown}: cannot convert the SavedModel to TFLite ({str(exc).splitlines()[0]})") from None
    return tflite_graph.parse(flatbuffer, shown)


def _extract(archive: zipfile.ZipFile, root: PurePosixPath, target: Path) -> None:
    """The files under `root` in the zip, written below `target`; nothing outside it."""
    for name in archive.namelist():
        member = PurePosixPath(name)
        if name.endswith("/") or member.is_absolute() or ".." in member.parts:
            continue
        if root.parts and member.parts[: len(root.parts)] != root.parts:
            continue
        out = target.joinpath(*member.parts[len(root.parts) :])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(archive.read(name))


def _from_zip(path: Path):
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
            names = archive.namelist()
            saved = [n for n in names if Path(n).name == "saved_model.pb"]
            models = [n for n in names if n.lower().endswith((".h5", ".keras", ".tflite"))]
            if saved:
                _extract(archive, PurePosixPath(saved[0]).parent, Path(tmp, "saved_model"))
                return _saved_model(Path(tmp, "saved_model"), path)
            if not models:
                raise GradcamError(
                    f"{path}: the zip holds no model.h5, .tflite or saved_model/ (found {', '.join(names)})"
                )
            name = "model.h5" if "model.h5" in models else models[0]
            target = Path(tmp) / Path(name).name
            target.write_bytes(archive.read(name))
            return load_model(target)
    except zipfile.BadZipFile as exc:
        raise GradcamError(f"{path}: not a readable zip file ({exc})") from None


def load_model(path: str | Path):
    """The model at `path`, without compiling it: a Keras model, or a TFLite graph (Graph)."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _saved_model(path, path)
        raise GradcamError(f"{path}: a folder that holds no saved_model.pb (expected a SavedModel folder)")
    if not path.is_file():
        raise GradcamError(not_found(path, "model file"))
    if path.suffix.lower() == ".onnx":
        raise GradcamError(f"{path}: {ONNX}")
    if is_tflite(path):
        return tflite_graph.read(path)
    if zipfile.is_zipfile(path) and not _is_keras_archive(path):
        return _from_zip(path)
    return _keras_file(path)


def _is_keras_archive(path: Path) -> bool:
    """A Keras 3 `.keras` file: a zip of its config, metadata and weights."""
    with zipfile.ZipFile(path) as archive:
        return {"config.json", "metadata.json"} <= set(archive.namelist())


def adapter_for(model, layer: str = "auto", impulse_shape: tuple[int, int, int] | None = None):
    """The engine's view of a loaded model: ModelAdapter (Keras) or TwinAdapter (TFLite)."""
    if isinstance(model, Graph):
        from gradcam.engine.twin_model import TwinAdapter

        return TwinAdapter(model, layer, impulse_shape)
    from gradcam.engine.model import ModelAdapter

    return ModelAdapter(model, layer, impulse_shape)
