"""The one exception type the job raises for bad input; the CLI prints it as a one-line error."""


class GradcamError(Exception):
    """A problem with the user's input (model, dataset, metadata, API) with a clear message."""
