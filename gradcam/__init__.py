"""Grad-CAM for Edge Impulse image models: explain every test image, hand back deploy.zip.

The public API (`Explainer`, `load_model`, FOMO's `Box`, and `explain_dataset`: the whole job)
is imported lazily so that `import gradcam` and the command line's `--help` stay fast and do no
TensorFlow work.
"""

__all__ = ["Box", "Explainer", "Explanation", "GradcamError", "explain_dataset", "load_model"]


def __getattr__(name: str):
    if name in ("Explainer", "Explanation", "explain_dataset", "load_model"):
        from gradcam.quiet import import_quietly

        import_quietly()
    if name == "Explainer":
        from gradcam.explainer import Explainer

        return Explainer
    if name == "Explanation":
        from gradcam.explanation import Explanation

        return Explanation
    if name == "explain_dataset":
        from gradcam.job.run import explain_dataset

        return explain_dataset
    if name == "load_model":
        from gradcam.engine.model import load_model

        return load_model
    if name == "Box":
        from gradcam.engine.fomo import Box

        return Box
    if name == "GradcamError":
        from gradcam.errors import GradcamError

        return GradcamError
    raise AttributeError(name)
