"""Top-k, per-class and balanced accuracy against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score, top_k_accuracy_score

from landmark_afl.metrics.classification import (
    balanced_accuracy,
    classification_metrics,
    per_class_accuracy,
    topk_accuracy,
)


@pytest.fixture
def imbalanced():
    rng = np.random.default_rng(0)
    weights = np.r_[np.full(6, 5.0), np.ones(6)]
    labels = rng.choice(12, size=400, p=weights / weights.sum())
    scores = rng.normal(size=(400, 12))
    scores[np.arange(400), labels] += rng.uniform(0, 3, 400)  # informative but imperfect
    return scores, labels


def test_topk_matches_sklearn(imbalanced):
    scores, labels = imbalanced
    for k in (1, 3, 5, 11):
        expected = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(12))
        assert topk_accuracy(scores, labels, k) == pytest.approx(expected)
    assert topk_accuracy(torch.from_numpy(scores), torch.from_numpy(labels), 1) == pytest.approx(
        np.mean(scores.argmax(1) == labels)
    )


def test_balanced_and_per_class_match_sklearn(imbalanced):
    scores, labels = imbalanced
    pred = scores.argmax(1)
    assert balanced_accuracy(pred, labels, 12) == pytest.approx(balanced_accuracy_score(labels, pred))
    np.testing.assert_allclose(per_class_accuracy(pred, labels, 12), recall_score(labels, pred, average=None))
    assert balanced_accuracy(pred, labels, 12) != pytest.approx(topk_accuracy(scores, labels, 1))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_absent_class_is_nan_and_left_out_of_the_mean():
    labels = np.array([0, 0, 1, 1, 1, 3])
    pred = np.array([0, 1, 1, 1, 0, 2])
    acc = per_class_accuracy(pred, labels, 4)
    np.testing.assert_allclose(acc, [0.5, 2 / 3, np.nan, 0.0])
    assert balanced_accuracy(pred, labels, 4) == pytest.approx(balanced_accuracy_score(labels, pred))


def test_ties_break_like_argmax_so_a_constant_output_is_not_perfect():
    labels = np.array([0, 1, 2, 3])
    scores = np.zeros((4, 4))
    assert topk_accuracy(scores, labels, 1) == 0.25  # argmax says class 0 for all
    assert topk_accuracy(scores, labels, 2) == 0.5


def test_classification_metrics_keys_and_top5_only_with_five_classes(imbalanced):
    scores, labels = imbalanced
    out = classification_metrics(scores, labels)
    assert set(out) == {"top1", "top5", "balanced_acc", "per_class"} and out["per_class"].shape == (12,)
    assert "top5" not in classification_metrics(scores[:, :4], labels % 4)


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\[N, C\] and labels \[N\], got \[3, 4\] and \[2\]"):
        topk_accuracy(np.zeros((3, 4)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"labels span 0\.\.4, outside the 4 score columns"):
        topk_accuracy(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match="k must be between 1 and C = 4"):
        topk_accuracy(np.zeros((2, 4)), np.array([0, 1]), k=5)
