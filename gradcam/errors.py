"""The one exception type the job raises for bad input; the CLI prints it as a one-line error."""


class GradcamError(Exception):
    """A problem with the user's input (model, dataset, metadata, API) with a clear message."""


DATASET_EXPECTED = "an export zip or its folder"


def not_found(path, what: str, expected: str = "") -> str:
    """What to say when a file the user named is not there (the command line says it before
    TensorFlow loads, the module that opens the file to Python API users)."""
    return f"{path}: {what} not found" + (f" (expected {expected})" if expected else "")
