"""A decision policy per model version: recorded at training, served unless a setting set
explicitly overrides it, the settings for versions published before policies, refused at the
edge when it is not one, and shown in the report and the model card."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorer import Scorer, scorer_from_settings
from loanrisk.registry import LoadedModel, ModelRegistry
from loanrisk.registry.policy import DecisionPolicy, decision_policy, served_policy
from loanrisk.reporting.card import model_card
from loanrisk.schema import validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import MemoryStorage
from loanrisk.training.evaluate import band_table
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.policy import parent_policy, training_policy

OWN = DecisionPolicy(threshold=0.15, band_cutoffs=(0.1, 0.2, 0.4), band_names=("A", "B", "C", "D"))


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    """Version 1 trained with its own policy; version 2 published as before policies were
    recorded (its manifest has none)."""
    storage = MemoryStorage()
    process_dataset(validate_frame(generate_sample(3_000, seed=5)), storage, source="sample")
    run_training(TrainingRequest(rounds=30, **OWN.model_dump()), storage, nthread=1)
    registry = ModelRegistry(storage)
    own = registry.load("loan-default", 1)
    registry.publish(
        "loan-default",
        booster=own.booster,
        spec=own.spec,
        report=own.report,
        metadata={},
        schema=own.schema,
    )
    return registry


@pytest.fixture(scope="module")
def own(registry: ModelRegistry) -> LoadedModel:
    return registry.load("loan-default", 1)


@pytest.fixture(scope="module")
def old(registry: ModelRegistry) -> LoadedModel:
    return registry.load("loan-default", 2)


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    return generate_sample(400, seed=11).drop(columns=["loan_status"])


def labels_and_bands(scorer: Scorer, loans: pd.DataFrame) -> pd.DataFrame:
    results, _ = scorer.score_frame(loans)
    return results


def follows(results: pd.DataFrame, policy: DecisionPolicy) -> bool:
    p = results["probability"].to_numpy()
    names = np.array(policy.band_names, dtype=object)
    expected = names[np.searchsorted(np.array(policy.band_cutoffs), p, side="right")]
    return bool(
        (results["label"].to_numpy() == (p > policy.threshold)).all()
        and (results["band"].to_numpy() == expected).all()
    )


def test_a_version_records_the_policy_it_was_trained_with(
    own: LoadedModel, old: LoadedModel
) -> None:
    assert own.manifest.policy == OWN
    assert old.manifest.policy is None
    report = own.report.to_json()
    assert report["policy"] == OWN.model_dump(mode="json")
    assert [b["band"] for b in report["bands"]] == ["A", "B", "C", "D"]
    assert sum(b["loans"] for b in report["bands"]) == report["rows"]
    assert report["threshold"] == 0.15  # the confusion matrix is at the policy's threshold


def test_a_version_is_served_with_its_own_policy_when_no_setting_overrides_it(
    own: LoadedModel, loans: pd.DataFrame
) -> None:
    scorer = scorer_from_settings(own, Settings(storage="memory://policy"))
    results = labels_and_bands(scorer, loans)
    assert follows(results, OWN)
    assert set(results["band"]) <= {"A", "B", "C", "D"} and results["label"].any()
    described = scorer.describe().to_json()
    assert described["threshold"] == 0.15
    assert described["bands"] == {"cutoffs": [0.1, 0.2, 0.4], "names": ["A", "B", "C", "D"]}
    assert described["policy_source"] == {"threshold": "version", "bands": "version"}


def test_a_setting_set_explicitly_overrides_the_version(
    own: LoadedModel, loans: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANRISK_THRESHOLD", "0.9")
    scorer = scorer_from_settings(own, Settings())
    assert follows(labels_and_bands(scorer, loans), OWN.model_copy(update={"threshold": 0.9}))
    assert scorer.describe().policy_source == {"threshold": "setting", "bands": "version"}
    monkeypatch.delenv("LOANRISK_THRESHOLD")
    # the band settings go together: naming the bands applies the settings' cut-offs too
    renamed = scorer_from_settings(own, Settings(band_names=("good", "fair", "poor")))
    expected = DecisionPolicy(threshold=0.15, band_names=("good", "fair", "poor"))
    assert follows(labels_and_bands(renamed, loans), expected)
    assert renamed.describe().policy_source == {"threshold": "version", "bands": "setting"}
    # a setting given its default value explicitly still overrides
    assert scorer_from_settings(own, Settings(threshold=0.5)).threshold == 0.5


def test_a_version_without_a_policy_uses_the_settings(
    old: LoadedModel, loans: pd.DataFrame
) -> None:
    default = scorer_from_settings(old, Settings(storage="memory://policy"))
    assert follows(labels_and_bands(default, loans), DecisionPolicy())
    assert default.describe().policy_source == {"threshold": "default", "bands": "default"}
    settings = Settings(threshold=0.3, band_cutoffs=(0.25,), band_names=("in", "out"))
    strict = scorer_from_settings(old, settings)
    policy = DecisionPolicy(threshold=0.3, band_cutoffs=(0.25,), band_names=("in", "out"))
    assert follows(labels_and_bands(strict, loans), policy)
    assert strict.describe().policy_source == {"threshold": "setting", "bands": "setting"}


def test_a_scorer_built_directly_follows_the_version_unless_told_otherwise(
    own: LoadedModel, old: LoadedModel
) -> None:
    assert Scorer(own).threshold == 0.15 and Scorer(own).bands.names == OWN.band_names
    assert Scorer(old).threshold == 0.5
    given = Scorer(own, threshold=0.7)
    assert given.describe().policy_source == {"threshold": "given", "bands": "version"}


@pytest.mark.parametrize(
    ("threshold", "cutoffs", "names", "field", "message"),
    [
        (1.0, (0.2,), ("a", "b"), "threshold", "not a probability in (0, 1)"),
        (float("nan"), (0.2,), ("a", "b"), "threshold", "not a probability"),
        (0.5, (0.5, 0.2), ("a", "b", "c"), "band_cutoffs", "must increase: 0.5 then 0.2"),
        (0.5, (0.2, 0.2), ("a", "b", "c"), "band_cutoffs", "must increase"),
        (0.5, (0.0, 0.2), ("a", "b", "c"), "band_cutoffs", "0.0 is not a probability"),
        (0.5, (0.2, 1.5), ("a", "b", "c"), "band_cutoffs", "1.5 is not a probability"),
        (0.5, tuple(i / 40 for i in range(1, 21)), ("a",) * 21, "band_cutoffs", "at most 19"),
        (0.5, (0.2, 0.5), ("a", "b"), "band_names", "give 3 band names, not 2"),
        (0.5, (0.2,), ("a", " "), "band_names", "printable text of 1 to 40"),
        (0.5, (0.2,), ("a", "a"), "band_names", "must differ"),
    ],
)
def test_a_policy_that_is_not_one_is_refused_naming_the_field(
    threshold: float,
    cutoffs: tuple[float, ...],
    names: tuple[str, ...],
    field: str,
    message: str,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        decision_policy(threshold, cutoffs, names)
    assert refused.value.details == {"field": field}
    assert message in refused.value.message
    with pytest.raises(ValueError, match=re.escape(message)):  # a stored one, as a client's
        DecisionPolicy(threshold=threshold, band_cutoffs=cutoffs, band_names=names)
    if field != "threshold":
        with pytest.raises(ValueError, match=re.escape(message)):  # a queued training's too
            TrainingRequest(band_cutoffs=cutoffs, band_names=names)


def test_a_training_takes_its_options_then_the_settings_then_the_parents_policy(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(storage="memory://policy")
    assert training_policy(settings) == DecisionPolicy()
    parent = parent_policy(registry, "loan-default", "1")
    assert parent == OWN
    assert parent_policy(registry, "loan-default", "2") is None  # published before policies
    assert parent_policy(registry, "loan-default", "v99") is None  # the training reports it
    assert training_policy(settings, parent=parent) == OWN  # continued: the parent's policy
    renamed = training_policy(settings, parent=parent, band_names=["w", "x", "y", "z"])
    assert renamed.band_names == ("w", "x", "y", "z") and renamed.band_cutoffs == OWN.band_cutoffs
    assert training_policy(settings, parent=parent, threshold=0.4).threshold == 0.4
    monkeypatch.setenv("LOANRISK_BAND_CUTOFFS", "[0.3]")
    monkeypatch.setenv("LOANRISK_BAND_NAMES", '["fine", "risky"]')
    set_bands = training_policy(Settings(), parent=parent)
    assert set_bands == DecisionPolicy(
        threshold=0.15, band_cutoffs=(0.3,), band_names=("fine", "risky")
    )
    with pytest.raises(InvalidInput) as refused:
        training_policy(Settings(), band_cutoffs=[0.1, 0.2])
    assert refused.value.details == {"field": "band_names"}


def test_served_policy_says_where_each_part_came_from() -> None:
    served = served_policy(OWN, Settings(storage="memory://policy", threshold=0.6))
    assert served.policy == OWN.model_copy(update={"threshold": 0.6})
    assert served.describe() == {"threshold": "setting", "bands": "version"}


def test_the_band_table_counts_loans_as_scoring_bands_them() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    probability = np.array([0.05, 0.2, 0.2, 0.5, 0.7, 0.9])
    table = [
        b.model_dump()
        for b in band_table(labels, probability, cutoffs=(0.2, 0.5), names=("low", "mid", "high"))
    ]
    assert [(b["band"], b["loans"], b["defaults"]) for b in table] == [
        ("low", 1, 0),
        ("mid", 2, 1),
        ("high", 3, 2),
    ]
    assert table[1]["range"] == [0.2, 0.5] and table[2]["default_rate"] == pytest.approx(2 / 3)
    empty = [
        b.model_dump()
        for b in band_table(labels, probability, cutoffs=(0.01,), names=("none", "all"))
    ]
    assert empty[0]["loans"] == 0 and empty[0]["default_rate"] is None


def cells(fragment: str) -> list[list[str]]:
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", fragment, re.DOTALL):
        found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)
        out.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in found])
    return out


def test_the_card_shows_the_policy_its_bands_and_the_confusion_table(
    registry: ModelRegistry, own: LoadedModel
) -> None:
    card = model_card(registry, "loan-default", 1, Settings(storage="memory://policy"))
    text = html.unescape(card)
    assert "risk bands A below 0.1, B 0.1\u20130.2, C 0.2\u20130.4, D from 0.4" in text
    assert "over 0.15" in text
    bands = re.search(r"<caption>Risk bands of the decision policy.*?</table>", card, re.DOTALL)
    assert bands, "the card has no band table"
    rows = cells(bands.group(0))[1:]
    assert [r[0] for r in rows] == ["A", "B", "C", "D"]
    assert [r[2] for r in rows] == [f"{b['loans']:,}" for b in own.report.to_json()["bands"]]
    confusion = re.search(r'id="chart-confusion".*?</figure>', card, re.DOTALL)
    assert confusion and "Confusion matrix at threshold 0.15" in confusion.group(0)
    matrix = own.report.to_json()["confusion_matrix"]
    assert cells(confusion.group(0))[1:] == [
        ["Actual non-default", f"{matrix['tn']:,}", f"{matrix['fp']:,}"],
        ["Actual default", f"{matrix['fn']:,}", f"{matrix['tp']:,}"],
    ]
    overridden = html.unescape(model_card(registry, "loan-default", 1, Settings(threshold=0.3)))
    assert "LOANRISK_THRESHOLD is set: the service labels its loans at 0.3 instead" in overridden
    old = html.unescape(model_card(registry, "loan-default", 2, Settings(storage="memory://p")))
    assert "None recorded" in old and "Served at the threshold setting's 0.5" in old
