"""The search for a less discriminatory alternative (docs/fairness.md): a tuning study on AUC
and the adverse impact ratio of out-of-fold approvals, its frontier and finding, the
alternative trained as an unpromoted version and compared with the champion on both AUC and
AIR, on the public dataset with age as a rule-defined protected attribute and on PAKDD 2009
with SEX; the card shows the search."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from loanrisk.contracts import TrainingOptions, TuneJob, TuneOptions
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.errors import InvalidInput, NotFound
from loanrisk.fairness.groups import attribute_groups
from loanrisk.fairness.lda import (
    SearchPoint,
    SearchTarget,
    air_frontier,
    approval_airs,
    capped,
    find_lda,
)
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.compare import Versions, held_out
from loanrisk.registry import ModelRegistry
from loanrisk.registry.masterscale import Grade, MasterScale
from loanrisk.registry.scaling import Scaling
from loanrisk.reporting.card import model_card
from loanrisk.requests import training_request, tune_job
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.schema.infer import infer_schema
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.tune import Study, Trial, run_tuning, study_path

from ..conftest import REAL_CSV
from ..console.conftest import ADMIN_KEY, KEYS
from ..console.test_console import log_in
from ..test_cli import run
from ..test_pakdd_journey import LABEL, PAKDD, REVIEW, reviewed

FAST = {"max_rounds": 60, "early_stopping_rounds": 10, "folds": 2}
MODEL = "loan-default"


def target(**changes: float) -> SearchTarget:
    given = {"auc_loss": 0.005, "min_air_gain": 0.02, **changes}
    return SearchTarget(
        attribute="age", reference="at least 25", groups=("under 25",), threshold=0.5, **given
    )


def point(number: int, auc: float, air: float | None) -> SearchPoint:
    return SearchPoint(number=number, auc=auc, air=air)


def test_the_alternative_is_the_fairest_trial_within_the_auc_loss_of_the_best() -> None:
    best = point(0, 0.900, 0.70)
    trials = [
        best,
        point(1, 0.897, 0.74),  # within 0.005: +0.04, material
        point(2, 0.896, 0.73),
        point(3, 0.880, 0.99),  # fairer, but 0.02 of AUC away
        point(4, 0.8951, 0.76),  # 0.0049 away: inside
    ]
    found = find_lda(trials, best, target())
    assert found.alternative == point(4, 0.8951, 0.76) and found.material
    assert found.air_gain == pytest.approx(0.06) and found.auc_cost == pytest.approx(0.0049)
    # A smaller gain than the material one is reported, not material.
    assert not find_lda(trials, best, target(min_air_gain=0.1)).material
    # A wider AUC loss reaches trial 3; a loss of 0 leaves only the best itself.
    assert find_lda(trials, best, target(auc_loss=0.03)).alternative == trials[3]
    alone = find_lda(trials, best, target(auc_loss=0.0))
    assert alone.alternative is None and not alone.material
    assert "no trial within 0 of the best CV AUC" in alone.statement
    # The frontier: no trial on it is beaten on both AUC and AIR, highest AUC first.
    assert [t.number for t in air_frontier(trials)] == [0, 1, 4, 3]


def test_an_air_above_parity_gains_nothing_and_an_undefined_one_is_never_chosen() -> None:
    best = point(0, 0.900, 1.0)
    found = find_lda([best, point(1, 0.899, 1.25), point(2, 0.899, None)], best, target())
    assert found.alternative is None  # 1.25 is capped at 1: no less adverse impact to remove
    assert capped(1.25) == 1.0 and capped(None) == 0.0


def test_a_trial_s_air_is_the_ratio_of_approval_rates_counted_directly() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"age": rng.integers(18, 70, 4_000).astype(str)})
    schema = LoanSchema.model_validate(
        {
            "name": "t",
            "columns": [
                {"name": "bad", "role": "label", "type": "integer"},
                {"name": "x", "type": "numeric"},
                {"name": "age", "role": "protected", "type": "integer", "privileged": {"min": 25}},
            ],
        }
    )
    groups = attribute_groups(schema, frame, "age")
    young = frame["age"].astype(int).to_numpy() < 25
    pd_ = rng.random(4_000) * np.where(young, 1.2, 1.0)  # the young are declined more
    airs = approval_airs(pd_, groups, threshold=0.5)
    approved = pd_ <= 0.5
    expected = approved[young].mean() / approved[~young].mean()
    assert list(airs.values()) == [pytest.approx(expected, abs=1e-12)]


def test_the_fairness_objective_goes_with_a_protected_attribute() -> None:
    assert TuneOptions(fairness="age").objective == "auc-air"
    with pytest.raises(ValidationError, match="fairness"):
        TuneOptions(objective="auc-air")
    with pytest.raises(ValidationError, match="fairness"):
        TuneOptions(fairness="age", objective="auc-per-cost")


@dataclass(frozen=True)
class Data:
    root: Path
    storage: FsspecStorage
    dataset: str


def age_schema() -> LoanSchema:
    """The built-in schema with the applicant's age protected: 25 or older is the reference
    group (a rule), under 25 the protected one; age is then never a model input."""
    doc = builtin_schema().model_dump(mode="json", exclude_none=True)
    for column in doc["columns"]:
        if column["name"] == "person_age":
            for key in ("risk", "reason", "reasons", "noise", "preprocess"):
                column.pop(key, None)
            column.update(role="protected", privileged={"min": 25})
    return LoanSchema.model_validate(doc)


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """3,000 loans of the public dataset with age protected, and a champion (version 1)."""
    root = tmp_path_factory.mktemp("lda-public")
    storage = FsspecStorage(str(root))
    schema = age_schema()
    raw = pd.read_csv(REAL_CSV).sample(3_000, random_state=0)
    manifest = process_dataset(
        validate_frame(raw, schema=schema), storage, source="public", schema=schema
    )
    run_training(TrainingRequest(dataset=manifest.id, rounds=20), storage, nthread=1)
    return Data(root, storage, manifest.id)


def counted_air(storage: FsspecStorage, dataset: str, version: int, rows: pd.Index) -> float:
    """The AIR of ``version``'s approvals on the test split, counted from its own scores."""
    test = DatasetCatalogue(storage).load_split(dataset, "test").iloc[rows]
    model = ModelRegistry(storage).load(MODEL, version)
    scored, _ = Scorer(model).score_frame(test.drop(columns=["loan_status"]))
    threshold = model.manifest.policy.threshold if model.manifest.policy else 0.5
    approved = scored["probability"].to_numpy() <= threshold
    young = pd.to_numeric(test["person_age"]).to_numpy() < 25
    return float(approved[young].mean() / approved[~young].mean())


def test_the_search_on_the_public_dataset_with_age_trains_an_alternative_to_compare(
    public: Data,
) -> None:
    storage, settings = public.storage, Settings(storage=str(public.root))
    job = TuneJob(dataset=public.dataset, study="age", fairness="person_age", trials=8, **FAST)
    study = run_tuning(job, storage, nthread=1)
    assert study.fairness is not None and study.fairness.groups == ("not at least 25",)
    assert all(t.air is not None and t.air == min(t.air_by_group.values()) for t in study.trials)  # type: ignore[union-attr, type-var]
    frontier = study.frontier()
    assert frontier[0] == study.best()
    for trial in frontier:  # nothing beats a frontier trial on both objectives
        assert not any(
            t.auc > trial.auc and capped(t.air) > capped(trial.air) for t in study.trials
        )
    finding = study.lda()
    assert finding is not None and finding.alternative is not None
    within = [t for t in study.trials if t.auc >= study.best().auc - 0.005]
    assert capped(finding.alternative.air) == max(capped(t.air) for t in within)

    # Resumed with a wider AUC loss: no new trial, another alternative, now material.
    wider = run_tuning(job.model_copy(update={"auc_loss": 0.05}), storage, nthread=1)
    assert len(wider.trials) == 8 and (found := wider.lda()) is not None and found.material
    # The AIRs were counted at one threshold: a resumption at another is refused.
    with pytest.raises(InvalidInput, match=r"threshold: 0\.5 not 0\.4"):
        run_tuning(job.model_copy(update={"threshold": 0.4, "trials": 9}), storage, nthread=1)
    with pytest.raises(InvalidInput, match="fairness: 'loan_amnt' is a feature") as refused:
        run_tuning(
            job.model_copy(update={"study": "x", "fairness": "loan_amnt"}), storage, nthread=1
        )

    assert refused.value.details == {"field": "fairness"}
    options = TrainingOptions(dataset=public.dataset, params_from="age:lda", promote=False)
    request = training_request(
        options, settings, storage, model_name=MODEL, model_directory="models"
    )
    trained = run_training(request, storage, nthread=1)
    version = trained.manifest.version
    registry = ModelRegistry(storage)
    assert not trained.promoted and registry.resolve(MODEL, "production") == 1
    tuned = trained.manifest.model_extra["tuned_from"]  # type: ignore[index]
    assert tuned["pick"] == "lda" and tuned["attribute"] == "person_age"
    assert tuned["trial"] == found.alternative.number  # type: ignore[union-attr]
    assert request.threshold == found.threshold

    compared = held_out(storage, registry, settings, Versions(MODEL, 1, version))
    assert compared.fairness is not None
    (group,) = compared.fairness.groups
    assert (group.attribute, group.group, group.reference) == (
        "person_age",
        "not at least 25",
        "at least 25",
    )
    rows = pd.RangeIndex(compared.rows)  # every test loan was scored by both
    assert group.a.air == pytest.approx(counted_air(storage, public.dataset, 1, rows), abs=1e-12)
    assert group.b.air == pytest.approx(
        counted_air(storage, public.dataset, version, rows), abs=1e-12
    )
    assert group.difference == pytest.approx(group.b.air - group.a.air)  # type: ignore[operator]
    assert compared.auc_difference.b_minus_a == pytest.approx(compared.b.auc - compared.a.auc)

    card = model_card(registry, MODEL, version, settings)
    assert "Search for a less discriminatory alternative" in card
    assert found.statement[1:] in card and "(this version)" in card
    assert "less discriminatory" not in model_card(registry, MODEL, 1, settings)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOANRISK_API_KEYS", KEYS)
        app = create_app(Settings(storage=str(public.root), nthread=1))
    with TestClient(app, follow_redirects=False) as client:
        log_in(client, ADMIN_KEY)
        page = client.get(f"/console/models/{MODEL}/versions/{version}")
    assert page.status_code == 200
    assert '<h2 id="lda-search">Search for a less discriminatory alternative</h2>' in page.text
    assert found.statement[1:] in page.text

    # A study gone bad is said on the card, never fatal to it.
    storage.write_bytes(study_path(DatasetCatalogue(storage), public.dataset, "age"), b"{")
    damaged = model_card(registry, MODEL, version, settings)
    assert "The search's frontier is not shown: the study cannot be read" in damaged


def test_a_search_is_measured_against_the_champion_s_decision_settings(public: Data) -> None:
    """No threshold given: approvals are counted where the model's champion decides (0.3
    here), else at LOANRISK_THRESHOLD; a given one wins. The alternative takes the
    champion's bands, master scale and points scaling."""
    storage, settings = public.storage, Settings(storage=str(public.root))
    scale = MasterScale(
        name="house",
        grades=(Grade(name="good", lower=0.0, upper=0.1), Grade(name="bad", lower=0.1, upper=1.0)),
    )
    decided = {"threshold": 0.3, "band_cutoffs": (0.1, 0.2, 0.4), "band_names": tuple("ABCD")}
    run_training(
        TrainingRequest(
            dataset=public.dataset,
            rounds=5,
            model_name="cautious",
            master_scale=scale,
            scaling=Scaling(points=500, odds=20, pdo=40),
            **decided,
        ),
        storage,
        nthread=1,
    )
    search = TuneOptions(fairness="person_age")
    where = {"dataset": public.dataset, "data_directory": "data", "model_directory": "models"}
    job = tune_job(search, settings, storage, model_name="cautious", **where)
    assert job.threshold == 0.3
    assert job.threshold_source == "the champion cautious@production (version 1)'s"
    alone = tune_job(search, settings, storage, model_name="no-such-model", **where)
    assert (alone.threshold, alone.threshold_source) == (
        0.5,
        "LOANRISK_THRESHOLD (model 'no-such-model' has no champion)",
    )
    given = tune_job(
        search.model_copy(update={"threshold": 0.4}),
        settings,
        storage,
        model_name="cautious",
        **where,
    )
    assert (given.threshold, given.threshold_source) == (0.4, "given")

    options = TrainingOptions(dataset=public.dataset, promote=False)
    inherited = training_request(
        options, settings, storage, model_name="cautious", model_directory="models", decision_from=1
    )
    assert (inherited.threshold, inherited.band_cutoffs, inherited.band_names) == (
        0.3,
        (0.1, 0.2, 0.4),
        tuple("ABCD"),
    )
    assert inherited.master_scale == scale
    assert inherited.scaling == Scaling(points=500, odds=20, pdo=40)
    fresh = training_request(
        options, settings, storage, model_name="cautious", model_directory="models"
    )
    assert fresh.band_names == ("low", "medium", "high") and fresh.threshold == 0.5


def test_tune_fairness_train_lda_and_compare_on_the_command_line(public: Data) -> None:
    store = ["--storage", str(public.root)]
    tuned = run(
        "tune",
        "--dataset",
        public.dataset,
        "--study",
        "cli",
        "--fairness",
        "person_age",
        "--trials",
        "3",
        "--folds",
        "2",
        "--auc-loss",
        "0.1",
        "--train-lda",
        *store,
        "--json",
    )
    assert tuned.returncode == 0, tuned.stderr
    said = " ".join(tuned.stderr.split())
    assert (
        "approvals counted at PD <= 0.5: the champion loan-default@production (version 1)'s" in said
    )
    assert (
        "the alternative takes the decision settings of loan-default@production (version 1)" in said
    )
    doc = json.loads(tuned.stdout)
    lda = doc["study"]["lda"]
    assert lda["attribute"] == "person_age" and lda["auc_loss"] == 0.1
    assert {p["number"] for p in doc["study"]["frontier"]} >= {lda["baseline"]["number"]}
    version = doc["trained"]["version"]
    assert doc["trained"]["tuned_from"]["trial"] == lda["alternative"]["number"]

    compared = run("models", "compare", f"{MODEL}@production", f"{MODEL}@{version}", *store)
    assert compared.returncode == 0, compared.stderr
    assert "AUC difference (b - a)" in compared.stdout
    assert "adverse impact ratio of approvals" in compared.stdout
    assert "not at least 25" in " ".join(compared.stdout.split())

    alone = run("tune", "--dataset", public.dataset, "--train-lda", *store)
    assert alone.returncode == 2 and "--train-lda: search with --fairness" in alone.stderr
    plain = run("train", "--dataset", public.dataset, "--params-from", "tune:lda", *store)
    assert plain.returncode == 2 and "no tuning study 'tune'" in plain.stderr


def test_the_search_on_pakdd_with_sex(tmp_path: Path) -> None:
    assert PAKDD.is_file(), f"the PAKDD 2009 file is expected at {PAKDD}"
    with PAKDD.open("rb") as stream:
        head = b"".join(stream.readline() for _ in range(6_001))  # the header and 6,000 loans
    draft = infer_schema(io.BytesIO(head), label=LABEL, name="pakdd")
    patch = yaml.safe_load(REVIEW.read_text())
    schema = LoanSchema.model_validate(
        reviewed(draft.schema.model_dump(mode="json", exclude_none=True), patch)
    )
    storage = FsspecStorage(str(tmp_path))
    loans = read_csv(head, schema=schema, on_error="drop")
    dataset = process_dataset(loans, storage, source="pakdd", schema=schema).id
    run_training(TrainingRequest(dataset=dataset, rounds=20), storage, nthread=1)

    job = TuneJob(dataset=dataset, study="sex", fairness="sex", trials=6, **FAST)
    study = run_tuning(job, storage, nthread=1)
    assert study.fairness is not None
    assert (study.fairness.reference, study.fairness.groups) == ("M", ("F",))
    assert study.frontier()[0] == study.best() and all(t.air is not None for t in study.trials)
    finding = study.lda()
    # At the threshold of 0.5 nearly every applicant is approved: AIRs near 1, and an
    # alternative with a gain far under the material one.
    assert finding is not None and finding.alternative is not None and not finding.material
    settings = Settings(storage=str(tmp_path))
    options = TrainingOptions(dataset=dataset, params_from="sex:lda", promote=False)
    request = training_request(
        options, settings, storage, model_name=MODEL, model_directory="models"
    )
    version = run_training(request, storage, nthread=1).manifest.version
    compared = held_out(storage, ModelRegistry(storage), settings, Versions(MODEL, 1, version))
    assert compared.fairness is not None
    sex = [g for g in compared.fairness.groups if g.attribute == "sex"]
    assert [(g.group, g.reference) for g in sex] == [("F", "M")]
    assert sex[0].a.air is not None and sex[0].b.air is not None
    assert sex[0].difference == pytest.approx(sex[0].b.air - sex[0].a.air)


def test_only_a_search_that_found_an_alternative_has_one_to_pick() -> None:
    study = Study(
        name="s",
        dataset="d",
        objective="auc",
        folds=2,
        seed=0,
        monotone=False,
        max_rounds=10,
        early_stopping_rounds=1,
        lean_tolerance=0.001,
        created_at="",
        updated_at="",
    )
    assert study.lda() is None
    with pytest.raises(InvalidInput, match="searched no protected attribute"):
        study.pick("lda")
    fairest_is_best = [
        Trial(number=n, params={}, auc=auc, auc_std=0, nodes=1, rounds=1, seconds=0, air=air)
        for n, auc, air in ((0, 0.90, 0.95), (1, 0.899, 0.90))
    ]
    searched = study.model_copy(
        update={"objective": "auc-air", "fairness": target(), "trials": fairest_is_best}
    )
    with pytest.raises(NotFound, match=r"found no alternative: no trial within 0\.005"):
        searched.pick("lda")
