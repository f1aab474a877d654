"""How far to trust one map: one verdict from the two checks made on it. Pure code.

- Faithfulness (gradcam.engine.faithfulness): does blurring away what the map highlights take the
  class's evidence away, more than blurring away what it leaves out? It fails a map that highlights
  what the answer does not depend on.
- Agreement with the model's own evidence (gradcam.engine.agreement.evidence_at_peak): does hiding
  the place the map points at lower the class's score nearly as much as hiding any other place?
  It fails a map whose peak lies where the model does not look, however faithful its broad hot
  region: on a real Studio-built classifier, 28 of the 47 Grad-CAM maps that peaked on the image's
  border passed faithfulness alone.

A map is to trust when every check made on it passes; a map that is the model's own evidence
(occlusion) is checked by faithfulness alone.
"""

from __future__ import annotations

from gradcam.engine.agreement import AGREES

# Maps scoring below this faithfulness are "maps not to trust". Measured by bench/trust_threshold.py
# on the four trained test models: at 0.5, 85-94% of their own maps and 17-23% of random maps are
# trusted; the separation (own share minus random share, 0.70 on average) is flat from 0.4 to 0.7.
TRUST_THRESHOLD = 0.5


def trusted(faithfulness: float | None, evidence: float | None) -> bool | None:
    """Whether a map is to trust: its faithfulness at TRUST_THRESHOLD or more, and its agreement with
    the model's own evidence at AGREES or more, each where measured; None when neither was."""
    passed = [value >= bar for value, bar in ((faithfulness, TRUST_THRESHOLD), (evidence, AGREES)) if value is not None]
    return all(passed) if passed else None
