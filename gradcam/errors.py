"""The one exception type the job raises for bad input; the CLI prints it as a one-line error."""


class GradcamError(Exception):
    """A problem with the user's input (model, dataset, metadata, API) with a clear message."""


def tflite_as_model(path) -> str:
    """What to say when a TFLite model is given where the Keras model goes (the command line says it
    before TensorFlow loads, the model loader to Python API users)."""
    return f"{path} is a TFLite model: pass the Keras .h5 as --model and this file as --tflite"
