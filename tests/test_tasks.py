"""Each task on its own: the score it explains, how it reads outputs, how it judges and compares."""

import math

import numpy as np
import pytest
import tensorflow as tf

from gradcam.engine.tasks import PREDICTED, Answer, Binary, Classification, Detection, Regression, task_for
from gradcam.errors import GradcamError

LOGITS = np.array([[2.0, -1.0, 0.5], [-3.0, 4.0, 1.0]], np.float32)


def _target(task, logits, targets):
    return task.target(tf.constant(logits), tf.constant(targets, tf.int32)).numpy()


def test_the_task_comes_from_the_last_layer():
    assert isinstance(task_for("softmax", 3, "dense"), Classification)
    assert isinstance(task_for("linear", 3, "dense"), Classification), "logits: softmax applied"
    assert isinstance(task_for("sigmoid", 1, "dense"), Binary)
    assert isinstance(task_for("linear", 1, "dense"), Regression)
    with pytest.raises(GradcamError, match="the model's last layer 'dense' has activation 'relu' with 3 outputs"):
        task_for("relu", 3, "dense")


def test_classification_explains_the_logit_of_the_target_or_predicted_class():
    task = Classification()
    np.testing.assert_array_equal(_target(task, LOGITS, [PREDICTED, PREDICTED]), [2.0, 4.0])
    np.testing.assert_array_equal(_target(task, LOGITS, [2, 0]), [0.5, -3.0])
    answer = task.answer(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"])
    assert (answer.prediction, answer.label, answer.confidence) == (1, "b", 0.7)
    assert task.judge(answer, "b", 0.1) == (True, None) and task.judge(answer, "a", 0.1) == (False, None)
    assert task.target_index("c", ["a", "b", "c"]) == 2 and task.target_index(None, ["a"]) == PREDICTED
    with pytest.raises(GradcamError, match="2 class names \\(a, b\\) for a classification model with 3 outputs"):
        task.class_names(["a", "b"], 3)
    assert task.class_names(None, 3) == ["0", "1", "2"]
    many = [f"class{i}" for i in range(63)]
    with pytest.raises(GradcamError) as found:
        Detection().class_names(many, 4)
    message = str(found.value)
    assert message.startswith("63 class names (class0, class1, class2, class3, class4, class5, class6, class7, ... (63")
    assert "class8" not in message and " for an object detection model with " in message
    assert task.unknown_labels(["a", "A", "d"], ["a", "b"]) == ["A", "d"]


def test_binary_explains_the_logit_for_class_1_and_its_negation_for_class_0():
    task = Binary()
    logits = np.array([[1.5], [-2.0]], np.float32)
    np.testing.assert_array_equal(_target(task, logits, [PREDICTED, PREDICTED]), [1.5, 2.0])
    np.testing.assert_array_equal(_target(task, logits, [0, 1]), [-1.5, -2.0])
    answer = task.answer(np.array([0.2]), ["no", "yes"])
    assert (answer.prediction, answer.label) == (0, "no") and answer.confidence == pytest.approx(0.8)
    np.testing.assert_allclose(answer.scores, [0.8, 0.2])
    assert task.class_names(None, 1) == ["0", "1"]


def test_regression_explains_its_value_and_judges_within_the_threshold():
    task = Regression()
    np.testing.assert_array_equal(_target(task, np.array([[3.5], [-1.0]], np.float32), [PREDICTED, 1]), [3.5, -1.0])
    answer = task.answer(np.array([2.25]), [])
    assert answer.label == "2.25" and math.isnan(answer.confidence)
    correct, error = task.judge(answer, "2.3", 0.1)
    assert correct and error == pytest.approx(0.05)
    assert task.judge(answer, "3", 0.1)[0] is False
    assert task.agrees(answer, Answer(2.3, "2.3", math.nan, np.array([2.3])), 0.1)
    assert not task.agrees(answer, Answer(2.5, "2.5", math.nan, np.array([2.5])), 0.1)
    assert task.label_problem("12.5") is None
    assert task.label_problem("big") == "regression label 'big' is not a number"
    assert task.target_index("anything", []) == PREDICTED and not task.classifies
