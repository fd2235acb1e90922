"""jaxnet.metrics: predictions, accuracy, the confusion matrix and per-class scores."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import metrics

# Class counts of the MNIST test set (10 000 images; class 0 has 980).
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_predict_is_argmax_of_the_logits():
    logits = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9], [-1.0, -2.0, -0.5]])
    np.testing.assert_array_equal(metrics.predict(logits), [1, 0, 2])


def test_predict_one_output_thresholds_the_logit_at_zero():
    np.testing.assert_array_equal(metrics.predict(jnp.array([[2.0], [-0.1], [0.3]])), [1, 0, 1])


def test_labels_of_accepts_labels_and_one_hot_targets():
    np.testing.assert_array_equal(metrics.labels_of(jnp.array([2, 0, 1])), [2, 0, 1])
    np.testing.assert_array_equal(metrics.labels_of(jnp.eye(3)[jnp.array([2, 0, 1])]), [2, 0, 1])


def test_accuracy_counts_correct_predictions():
    logits = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(metrics.accuracy(logits, jnp.array([0, 1, 1, 1]))) == pytest.approx(0.75)


def test_confusion_matrix_counts_true_by_predicted():
    labels = jnp.array([0, 0, 1, 2, 2, 2])
    predictions = jnp.array([0, 1, 1, 2, 0, 2])
    expected = [[1, 1, 0],   # true 0: once right, once called 1
                [0, 1, 0],   # true 1: right
                [1, 0, 2]]   # true 2: twice right, once called 0
    np.testing.assert_array_equal(metrics.confusion_matrix(predictions, labels, 3), expected)


def test_confusion_matrix_sums_to_the_number_of_examples():
    labels = jnp.arange(50) % 7
    predictions = (jnp.arange(50) * 3) % 7
    confusion = metrics.confusion_matrix(predictions, labels, 7)
    assert confusion.shape == (7, 7) and int(confusion.sum()) == 50
    np.testing.assert_array_equal(confusion.sum(axis=1), jnp.bincount(labels, length=7))


def test_per_class_recall():
    confusion = jnp.array([[3, 1, 0], [0, 2, 2], [0, 0, 5]])
    np.testing.assert_allclose(metrics.per_class_recall(confusion), [3 / 4, 2 / 4, 5 / 5])


def test_per_class_recall_of_an_absent_class_is_zero_not_nan():
    confusion = jnp.array([[2, 0], [0, 0]])
    np.testing.assert_array_equal(metrics.per_class_recall(confusion), [1.0, 0.0])


def test_one_vs_rest_accuracy_when_everything_is_predicted_class_1():
    """The constant classifier: class 0 (980 of 10 000) scores 1 − 980/10 000 = 0.902."""
    labels = jnp.repeat(jnp.arange(10), jnp.array(MNIST_TEST_COUNTS), total_repeat_length=10_000)
    predictions = jnp.ones_like(labels)
    confusion = metrics.confusion_matrix(predictions, labels, 10)
    scores = metrics.per_class_one_vs_rest_accuracy(confusion)
    assert float(scores[0]) == pytest.approx(0.902)
    # class 1 is "yes" for everything: right only on its own 1135 images
    assert float(scores[1]) == pytest.approx(0.1135)
    expected = [1 - n / 10_000 for n in MNIST_TEST_COUNTS]
    expected[1] = MNIST_TEST_COUNTS[1] / 10_000
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    # ... while the recall of the same classifier is 0 for every class but 1
    np.testing.assert_array_equal(metrics.per_class_recall(confusion), [0, 1] + [0] * 8)


def test_one_vs_rest_accuracy_of_a_perfect_classifier_is_one():
    labels = jnp.arange(20) % 4
    confusion = metrics.confusion_matrix(labels, labels, 4)
    np.testing.assert_array_equal(metrics.per_class_one_vs_rest_accuracy(confusion), [1.0] * 4)
