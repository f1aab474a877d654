"""Grad-CAM for Edge Impulse image models: explain every test image, hand back deploy.zip.

The public API (`Explainer`, `load_model`, FOMO's `Box`, and `explain_dataset`: the whole job)
is imported lazily so that `import gradcam` and the command line's `--help` stay fast and do no
TensorFlow work.
"""

import importlib

__all__ = ["Box", "Explainer", "Explanation", "GradcamError", "explain_dataset", "load_model"]

# Each public name, the module it lives in, and whether that module loads TensorFlow.
_PUBLIC = {
    "Explainer": ("gradcam.explainer", True),
    "Explanation": ("gradcam.explanation", True),
    "explain_dataset": ("gradcam.job.run", True),
    "load_model": ("gradcam.engine.formats", True),
    "Box": ("gradcam.engine.fomo", False),
    "GradcamError": ("gradcam.errors", False),
}


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(name)
    module, tensorflow = _PUBLIC[name]
    if tensorflow:  # its start-up chatter kept off stderr
        from gradcam.quiet import import_quietly

        import_quietly()
    return getattr(importlib.import_module(module), name)
