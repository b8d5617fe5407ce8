"""A scorecard challenger (``kind: scorecard``): trained on the dataset and split the XGBoost
version was, published as JSON only, served by the same scorer with the same result fields,
its scores the points table summed, its reasons the points lost against each attribute's best
bin, compared with the XGBoost version with DeLong intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from loanrisk.binning.apply import bin_indices
from loanrisk.binning.fit import fit_schema
from loanrisk.binning.models import BinningLimits
from loanrisk.contracts import TrainingOptions
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorecard import scorecard_reasons
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.compare import Versions, held_out
from loanrisk.registry import ModelRegistry
from loanrisk.registry.models import MODEL_FILE, SCORECARD_FILE
from loanrisk.registry.scaling import Scaling
from loanrisk.registry.scorecard import Characteristic, Scorecard, ScorecardBin
from loanrisk.reporting.card import model_card
from loanrisk.requests import training_request
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.validation._stats import grade_auc

NAME = "loan-default"


@pytest.fixture(scope="module")
def registry(root: Path) -> ModelRegistry:
    return ModelRegistry(FsspecStorage(str(root)), "models")


@pytest.fixture(scope="module")
def scorer(registry: ModelRegistry) -> Scorer:
    return Scorer(registry.load(NAME, 2))


@pytest.fixture(scope="module")
def loans(raw_loans: pd.DataFrame) -> pd.DataFrame:
    """Loans to score, label dropped, a few values missing and one unknown category."""
    frame = raw_loans.drop(columns=["loan_status"]).head(400).copy()
    frame.loc[::7, "person_emp_length"] = np.nan
    frame.loc[::11, "loan_int_rate"] = np.nan
    frame.loc[5, "loan_intent"] = "travel"  # no bin holds it: scored as missing, with a warning
    return frame


def by_hand(card: Scorecard, loan: pd.Series) -> int:
    """A loan's score read off the points table the way a person would: per attribute, the
    bin whose range or categories hold the value (missing, or a category no bin holds: the
    missing bin), its points added to the base points."""
    total = card.base_points
    for c in card.characteristics:
        value = loan[c.name]
        chosen = next(b for b in c.bins if b.kind == "missing")
        if not pd.isna(value):
            for b in c.bins:
                if b.kind == "range":
                    low = -math.inf if b.lower is None else b.lower
                    high = math.inf if b.upper is None else b.upper
                    if low <= float(value) < high:
                        chosen = b
                elif b.kind == "categories" and str(value).upper() in b.categories:
                    chosen = b
        total += chosen.points
    return total


def test_a_scorecard_version_is_json_only_and_knows_its_kind(registry: ModelRegistry) -> None:
    manifest = registry.manifest(NAME, 2)
    assert manifest.kind == "scorecard"
    assert registry.manifest(NAME, 1).kind == "xgboost"
    assert SCORECARD_FILE in manifest.files and MODEL_FILE not in manifest.files
    for file in manifest.files:
        data = registry.file(NAME, 2, file)
        assert data is not None and not data.startswith(b"\x80")  # no pickle protocol header
        json.loads(data)  # every file is JSON
    loaded = registry.load(NAME, 2)
    assert loaded.kind == "scorecard" and loaded.booster is None
    card = loaded.scorecard
    assert card is not None
    assert card.regularisation == {"penalty": "l2", "C": 1.0, "solver": "lbfgs"}
    assert "optbinning" in manifest.libraries
    assert manifest.rounds == {} and manifest.params == {}
    with pytest.raises(InvalidInput, match="is a scorecard: the profile needs an XGBoost"):
        loaded.require_booster("the profile")
    report = registry.report(NAME, 2)
    assert report.auc > 0.8 and report.grades and report.bands  # evaluated as XGBoost is
    assert manifest.training_dataset == registry.manifest(NAME, 1).training_dataset


def test_points_are_the_regression_scaled_and_rounded_once(registry: ModelRegistry) -> None:
    card = registry.load(NAME, 2).scorecard
    assert card is not None
    s = card.scaling
    assert card.base_points == round(s.offset - s.factor * card.intercept)
    for c in card.characteristics:
        for b in c.bins:
            assert b.points == int(np.rint(-s.factor * c.coefficient * b.woe))
            assert isinstance(b.points, int)


def test_served_scores_are_the_points_table_summed_by_hand(
    scorer: Scorer, loans: pd.DataFrame
) -> None:
    card = scorer.model.scorecard
    assert card is not None
    results, report = scorer.score_frame(loans, explain=True)
    assert report.rejected == [] and len(results) == len(loans)
    expected = [by_hand(card, loan) for _, loan in loans.iterrows()]
    assert results["score"].tolist() == expected
    scaling = scorer.model.scaling
    # The PD served is the score's, and the score is the PD's: exactly, both ways.
    assert results["score"].tolist() == scaling.scores_of(results["probability"]).tolist()
    assert results["probability"].tolist() == [scaling.probability_of(x) for x in expected]
    assert scorer.describe().backend == "scorecard" and scorer.fallback is None
    # The JSON path (one loan, and many) gives the same scores and fields.
    records = loans.head(40).astype(object).where(loans.head(40).notna(), None)
    many = scorer.score_records(records.to_dict(orient="records")).results
    assert [r.score for r in many] == expected[:40]
    one = scorer.score_record(records.iloc[5].to_dict())
    assert one.score == expected[5] == scaling.score_of(one.probability)
    assert one.grade == scorer.grader.of(one.probability) and one.band in ("low", "medium", "high")
    assert any("loan_intent: unknown category 'travel'" in w for w in one.warnings)
    assert any("scored in the missing bin" in w for w in many[0].warnings + many[7].warnings)


@pytest.mark.parametrize("scaling", [Scaling(), Scaling(points=500, odds=20, pdo=40)])
def test_every_score_a_scorecard_can_give_is_the_score_of_its_pd(scaling: Scaling) -> None:
    missing = ScorecardBin(kind="missing", label="missing", count=0, events=0, woe=0, points=0)
    card = Scorecard(
        scaling=scaling,
        intercept=0.0,
        base_points=0,
        characteristics=[
            Characteristic(
                name="x",
                type="numeric",
                coefficient=1.0,
                bins=[missing],
            )
        ],
    )
    low, high = card.score_range
    scores = np.arange(low - 50, high + 50)
    served = np.clip(scores, low, high)
    pd_of = 1.0 / (1.0 + np.exp((served - scaling.offset) / scaling.factor))
    assert (scaling.scores_of(pd_of) == served).all()
    assert all(scaling.score_of(scaling.probability_of(int(x))) == x for x in served[::97])


def test_bins_and_woe_are_the_binning_engines(registry: ModelRegistry, root: Path) -> None:
    loaded = registry.load(NAME, 2)
    card = loaded.scorecard
    assert card is not None
    directory, dataset = loaded.manifest.training_dataset or ("", "")
    train = DatasetCatalogue(FsspecStorage(str(root)), directory).load_split(dataset, "train")
    engine = fit_schema(loaded.schema, train, limits=BinningLimits(seed=0))
    for attribute, c in zip(engine.attributes, card.characteristics, strict=True):
        assert (attribute.name, attribute.edges) == (c.name, c.edges)
        kept = [b for b in attribute.bins if b.kind != "special" or b.count > 0]
        assert [(b.label, b.count, b.woe) for b in kept] == [
            (b.label, b.count, b.woe) for b in c.bins
        ]
        values = train[c.name]
        values = values.astype(object).where(values.notna(), None)
        engine_labels = [attribute.bins[i].label for i in bin_indices(attribute, values.tolist())]
        ours = c.indices(
            values.to_numpy(dtype=np.float64, na_value=np.nan)
            if c.type == "numeric"
            else values.to_numpy()
        )
        assert [c.bins[i].label for i in ours] == engine_labels
        assert np.bincount(ours, minlength=len(c.bins)).tolist() == [b.count for b in c.bins]


def test_reasons_rank_the_points_lost_against_each_attributes_best_bin(
    scorer: Scorer, loans: pd.DataFrame
) -> None:
    card = scorer.model.scorecard
    assert card is not None
    records = loans.head(60).astype(object).where(loans.head(60).notna(), None)
    results = scorer.score_records(
        records.to_dict(orient="records"), explain=True, top_k=len(card.characteristics)
    ).results
    codes = {(e.attribute, e.direction): e.code for e in scorer.model.reasons.reasons}  # type: ignore[union-attr]
    for result, (_, loan) in zip(results, records.iterrows(), strict=True):
        lost: dict[str, int] = {}
        points: dict[str, int] = {}
        for c in card.characteristics:
            bin_points = by_hand(
                card.model_copy(update={"characteristics": [c], "base_points": 0}), loan
            )
            points[c.name] = bin_points
            if c.best_points - bin_points > 0:
                lost[c.name] = c.best_points - bin_points
        assert result.reasons is not None
        assert {r.feature for r in result.reasons} == set(lost)
        assert [lost[r.feature] for r in result.reasons] == sorted(lost.values(), reverse=True)
        for reason in result.reasons:
            assert reason.points == points[reason.feature]
            assert reason.code is not None
            assert reason.code in {v for (a, _), v in codes.items() if a == reason.feature}


def test_a_scorecard_refuses_what_it_cannot_take_naming_the_field(root: Path) -> None:
    storage = FsspecStorage(str(root))
    for given, field in (
        ({"continue_from": "1"}, "continue_from"),
        ({"calibration": "platt"}, "calibration"),
        ({"params": {"max_depth": 3}}, "params"),
        ({"early_stopping_rounds": 5}, "early_stopping_rounds"),
    ):
        with pytest.raises(InvalidInput) as refused:
            run_training(TrainingRequest(kind="scorecard", **given), storage, nthread=1)
        assert refused.value.details["field"] == field
    with pytest.raises(InvalidInput, match="it is a scorecard") as refused:
        run_training(TrainingRequest(continue_from="2", rounds=2), storage, nthread=1)
    assert refused.value.details["field"] == "continue_from"
    with pytest.raises(ValidationError, match="kind"):
        TrainingOptions(kind="forest")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        training_request(
            TrainingOptions(kind="scorecard", params_from="study"),
            Settings(storage=str(root)),
            storage,
            model_name=NAME,
            model_directory="models",
        )
    assert refused.value.details["field"] == "params_from"
    # The calibration setting is the trees': a scorecard's request has none.
    request = training_request(
        TrainingOptions(kind="scorecard"),
        Settings(storage=str(root), calibration="isotonic"),
        storage,
        model_name=NAME,
        model_directory="models",
    )
    assert (request.kind, request.calibration) == ("scorecard", "none")
    assert ModelRegistry(storage, "models").versions(NAME) == [1, 2]  # nothing published


def test_the_xgboost_version_and_the_scorecard_compare_with_delong_intervals(
    registry: ModelRegistry, root: Path
) -> None:
    settings = Settings(storage=str(root), nthread=1)
    held = held_out(registry.storage, registry, settings, Versions(NAME, 1, 2), nthread=1)
    assert held.rows > 900 and held.left_out == 0
    for scores in (held.a, held.b):
        assert scores.auc_ci95 is not None
        low, high = scores.auc_ci95
        assert low < scores.auc < high and 0 < high - low < 0.1
    assert held.auc_difference.method == "DeLong"
    # The scorecard's interval, held to the ECB's grade-wise DeLong (validation._stats): its
    # PDs take few values, each a "grade".
    directory, dataset = registry.manifest(NAME, 2).training_dataset or ("", "")
    test = DatasetCatalogue(registry.storage, directory).load_split(dataset, "test")
    results, _ = Scorer(registry.load(NAME, 2)).score_frame(test.drop(columns=["loan_status"]))
    frame = pd.DataFrame({"pd": results["probability"], "y": test["loan_status"].to_numpy()})
    grades = frame.groupby("pd")["y"].agg(["sum", "count"]).sort_index()
    computed = grade_auc(grades["sum"].to_numpy(), (grades["count"] - grades["sum"]).to_numpy())
    assert computed is not None
    auc, s = computed
    assert held.b.auc == pytest.approx(auc, abs=1e-12)
    z = 1.959963984540054
    assert held.b.auc_ci95 == pytest.approx((auc - z * s, auc + z * s), abs=1e-12)


def test_the_model_card_shows_the_points_table(registry: ModelRegistry, root: Path) -> None:
    card = registry.load(NAME, 2).scorecard
    assert card is not None
    html = model_card(registry, NAME, 2, Settings(storage=str(root)))
    assert "a WoE logistic scorecard" in html and 'id="points-table"' in html
    assert f"Points table: base points {card.base_points}" in html
    first = card.characteristics[0]
    assert f'<td class="text">{first.bins[0].label}</td>' in html
    assert 'id="points-table"' not in model_card(registry, NAME, 1, Settings(storage=str(root)))


def test_a_scorecard_of_another_schema_trains_scores_and_compares(tmp_path: Path) -> None:
    """The second schema: an ordinal, a boolean, a text label, a protected column. Its
    stored splits hold the boolean as 0.0/1.0, which validation reads back as false/true
    (the comparison re-validates the test split)."""
    from loanrisk.data.process import process_dataset
    from loanrisk.schema import LoanSchema, validate_frame
    from tests.schema.second import SECOND, second_loans

    schema = LoanSchema.model_validate(SECOND)
    storage = FsspecStorage(str(tmp_path))
    loans = second_loans(2_000)
    process_dataset(validate_frame(loans, schema=schema), storage, source="second", schema=schema)
    run_training(TrainingRequest(rounds=10, params={"max_depth": 3}), storage, nthread=1)
    run_training(TrainingRequest(kind="scorecard"), storage, nthread=1)
    registry = ModelRegistry(storage, "models")
    card = registry.load(NAME, 2).scorecard
    assert card is not None
    kinds = {c.name: c.type for c in card.characteristics}
    ordinal = next(c.name for c in schema.features if c.type == "ordinal")
    boolean = next(c.name for c in schema.features if c.type == "boolean")
    assert (kinds[ordinal], kinds[boolean]) == ("categorical", "numeric")
    scorer = Scorer(registry.load(NAME, 2))
    raw = loans.drop(columns=[schema.label_name]).head(200)
    results, _ = scorer.score_frame(raw)
    clean = validate_frame(raw, schema=schema, mode="score").frame  # booleans as 0/1
    assert results["score"].tolist() == [by_hand(card, loan) for _, loan in clean.iterrows()]
    held = held_out(storage, registry, Settings(storage=str(tmp_path)), Versions(NAME, 1, 2))
    assert held.rows > 0 and held.b.auc_ci95 is not None


def test_a_special_code_treated_as_a_category_scores_in_its_own_bin() -> None:
    """A code declared ``treat: category`` reaches the scorer as a category value; training
    binned it on its own, so serving (one loan and a frame) takes that bin, not the missing one."""

    def bin_(kind: str, points: int, **fields: object) -> ScorecardBin:
        return ScorecardBin.model_validate(
            {"kind": kind, "label": kind, "count": 10, "events": 1, "woe": 0.0, "points": points}
            | fields
        )

    owning = Characteristic(
        name="home",
        type="categorical",
        coefficient=1.0,
        bins=[
            bin_("categories", 20, categories=["OWN", "MORTGAGE"]),
            bin_("categories", 5, categories=["RENT"]),
            bin_("special", -8, code="OTHER"),
            bin_("missing", 0),
        ],
    )
    assert [owning.index_of(v) for v in ("own", "RENT", "other", "Other", None)] == [0, 1, 2, 2, 3]
    assert owning.indices(["OWN", "other", None, "boat"]).tolist() == [0, 2, 3, 3]


def test_points_lost_rank_as_points_against_the_average_where_best_bins_score_alike(
    scorer: Scorer, loans: pd.DataFrame
) -> None:
    """docs/scorecard.md, where the rankings differ: the classic ranking (points lost against
    each attribute's best bin) is the ranking by bin points (against the sample's average)
    when every attribute's best bin scores the same; the trained table, whose best bins
    differ, ranks some loan otherwise."""
    card = scorer.model.scorecard
    assert card is not None
    doc = json.loads(card.to_json())
    for c in doc["characteristics"]:
        best = max(b["points"] for b in c["bins"])
        for b in c["bins"]:
            b["points"] -= best
    alike = Scorecard.model_validate(doc)
    records = loans.head(60).astype(object).where(loans.head(60).notna(), None)
    values = records.to_dict(orient="records")
    bins = np.array([card.encode_record(v, {}) for v in values])
    everyone = len(card.characteristics)
    differs = 0
    for table in (alike, card):
        ranked = scorecard_reasons(table, bins, values, top_k=everyone, schema=scorer.schema)
        for reasons in ranked:
            by_points = sorted(reasons, key=lambda r: r.points)  # stable: ties keep their order
            if table is alike:
                assert [r.feature for r in reasons] == [r.feature for r in by_points]
            else:
                differs += [r.feature for r in reasons] != [r.feature for r in by_points]
    assert differs > 0
