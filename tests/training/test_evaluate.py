"""Evaluation numbers against sklearn's and scipy's own functions; fairness by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss, f1_score, log_loss, precision_score, roc_auc_score

from loanrisk.errors import InvalidInput
from loanrisk.registry.report import EvaluationReport
from loanrisk.training.evaluate import evaluate
from loanrisk.training.fairness import parity_report


@pytest.fixture(scope="module")
def predictions() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = (rng.random(5_000) < 0.22).astype(np.int8)
    probability = np.clip(0.25 * labels + rng.beta(2, 5, 5_000), 0, 1)
    return labels, probability


def test_scores_match_sklearn_and_scipy(predictions: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probability = predictions
    report = evaluate(labels, probability, threshold=0.5).to_json()
    predicted = (probability > 0.5).astype(int)
    assert report["auc"] == pytest.approx(roc_auc_score(labels, probability), abs=1e-12)
    assert report["log_loss"] == pytest.approx(log_loss(labels, probability), rel=1e-9)
    assert report["brier"] == pytest.approx(brier_score_loss(labels, probability), abs=1e-12)
    ks = stats.ks_2samp(probability[labels == 1], probability[labels == 0]).statistic
    assert report["ks"] == pytest.approx(ks, abs=1e-9)
    classes = report["classification_report"]
    assert set(classes) == {"Non-Default", "Default", "accuracy", "macro avg", "weighted avg"}
    assert classes["Default"]["precision"] == pytest.approx(precision_score(labels, predicted))
    assert classes["Default"]["f1-score"] == pytest.approx(f1_score(labels, predicted))
    assert classes["Default"]["support"] == labels.sum()
    matrix = report["confusion_matrix"]
    assert matrix["tp"] == int(((predicted == 1) & (labels == 1)).sum())
    assert sum(matrix.values()) == labels.size


def test_roc_points_are_capped_and_span_the_curve(
    predictions: tuple[np.ndarray, np.ndarray],
) -> None:
    curve = evaluate(*predictions).to_json()["roc_curve"]
    assert len(curve["fpr"]) <= 200
    assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0)
    assert (curve["fpr"][-1], curve["tpr"][-1]) == (1.0, 1.0)
    assert curve["fpr"] == sorted(curve["fpr"])


def test_calibration_table_has_ten_bins_covering_every_row(
    predictions: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, probability = predictions
    table = evaluate(labels, probability).to_json()["calibration"]
    assert len(table) == 10
    assert sum(row["count"] for row in table) == labels.size
    low = next(row for row in table if row["bin"] == [0.0, 0.1])
    inside = probability < 0.1
    assert low["count"] == inside.sum()
    assert low["observed_rate"] == pytest.approx(labels[inside].mean())


def test_probability_distribution_counts_each_label_in_twenty_bins() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    probability = np.array([0.01, 0.04, 0.51, 0.97, 1.0])
    distribution = evaluate(labels, probability).to_json()["probability_distribution"]
    assert distribution["edges"][0] == 0.0 and distribution["edges"][-1] == 1.0
    assert len(distribution["edges"]) == 21
    assert distribution["non_default"][0] == 2 and distribution["non_default"][10] == 1
    assert sum(distribution["non_default"]) == 3
    assert distribution["default"][19] == 2 and sum(distribution["default"]) == 2


def test_a_report_written_when_score_meant_the_probability_still_reads() -> None:
    """Reports stored before "score" meant points name the distribution ``score_distribution``."""
    report = evaluate(np.array([0, 1] * 20), np.linspace(0.01, 0.99, 40))
    stored = report.to_json()
    stored["score_distribution"] = stored.pop("probability_distribution")
    read = EvaluationReport.model_validate(stored)
    assert read.probability_distribution == report.probability_distribution
    assert "score_distribution" not in read.to_json()


def test_degenerate_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="both defaults and non-defaults"):
        evaluate(np.zeros(5), np.full(5, 0.3))
    with pytest.raises(InvalidInput, match="same length"):
        evaluate(np.array([0, 1]), np.array([0.5]))


def test_fairness_ratios_on_a_tiny_example_worked_by_hand() -> None:
    # privileged: 4 loans; predicted default for rows 0, 1; true defaults rows 0, 2.
    #   tp=1 fp=1 tn=1 fn=1 -> every one of the eight rates is 1/2
    # non-privileged: 4 loans; predicted default for rows 4, 5, 6; true defaults rows 4, 5.
    #   tp=2 fp=1 tn=1 fn=0 -> PPV 2/3, FDR 1/3, NPV 1, FOR 0, TPR 1, FNR 0, TNR 1/2, FPR 1/2
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    probability = np.array([0.9, 0.8, 0.1, 0.2, 0.9, 0.7, 0.6, 0.1])
    privileged = np.array([True] * 4 + [False] * 4)
    report = parity_report(labels, probability, privileged, attribute="group", privileged_value="a")
    assert report.groups.privileged.size == 4
    parity = report.parity
    assert parity["PPV"] == pytest.approx(0.5 / (2 / 3))
    assert parity["FDR"] == pytest.approx(0.5 / (1 / 3))
    assert parity["NPV"] == pytest.approx(0.5)
    assert parity["FOR"] is None  # non-privileged FOR is 0
    assert parity["TPR"] == pytest.approx(0.5)
    assert parity["FNR"] is None
    assert parity["TNR"] == pytest.approx(1.0)
    assert parity["FPR"] == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="both groups"):
        parity_report(labels, probability, np.ones(8, bool), attribute="g", privileged_value="a")
