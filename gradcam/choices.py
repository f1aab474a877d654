"""The option lists and defaults, in one place that imports nothing: the command line reads them
without loading TensorFlow, and the modules that act on an option check it against the same list."""

DEFAULT_HOST = "studio.edgeimpulse.com"
AUTO = "auto"  # the method: gradcam.engine.cam.auto_method
METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")
INPUT_METHODS = ("integrated-gradients", "expected-gradients", "gradient-x-input")  # models explained at their input
OCCLUSION = "occlusion"  # the model's own evidence, as a method (gradcam.engine.occlusion)
EVIDENCE_CHECKS = ("budget", "all", "off")  # which maps are checked against that evidence (gradcam.job.checks)
POOLINGS = ("mean", "sum_abs")
NORMALIZATIONS = ("percentile", "simple")
RESIZE_MODES = ("squash", "fit-short", "fit-long", "crop")
RESIZE_METHODS = ("lanczos3", "nearest")  # the image block's kernel (its resizeMethod): gradcam.engine.resize
CROP_ANCHORS = tuple(f"{v}-{h}" for v in ("top", "middle", "bottom") for h in ("left", "center", "right"))
COLORS = ("RGB", "Grayscale")
INPUT_SCALINGS = ("0..1", "-1..1", "-128..127", "0..255", "torch", "bgr-subtract-imagenet-mean")
CATEGORIES = ("testing", "training", "all")
LAYOUTS = ("blend", "panel")
OVERLAYS = ("all", "mistakes")  # which samples get overlays in deploy.zip (results cover every sample)
MAX_BATCH = 1024
EXPLAIN = ("both", "keras", "tflite")  # which models' maps, where a Keras and a TFLite model are both given
