"""The one exception type the job raises for bad input; the CLI prints it as a one-line error."""


class GradcamError(Exception):
    """A problem with the user's input (model, dataset, metadata, API) with a clear message."""


DATASET_EXPECTED = "an export zip or its folder"


def not_found(path, what: str, expected: str = "") -> str:
    """What to say when a file the user named is not there (the command line says it before
    TensorFlow loads, the module that opens the file to Python API users)."""
    return f"{path}: {what} not found" + (f" (expected {expected})" if expected else "")


def check_choice(what: str, value, choices) -> None:
    """A value that must be one of `choices` (an option, a field): else the one-line error naming it."""
    if value not in choices:
        raise GradcamError(f"{what} {value!r}: expected one of {', '.join(choices)}")


def listed(names, shown: int = 8) -> str:
    """Names for an error, comma separated: the first `shown` and how many in all when there are more."""
    names = list(names)
    return ", ".join(names[:shown]) + (f", ... ({len(names)} in all)" if len(names) > shown else "")


def with_article(noun: str) -> str:
    """'a regression', 'an object detection'."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
