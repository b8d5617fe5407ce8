"""Monitoring in points: the system stability of the score and the characteristic analysis
of each scorecard attribute, held to optbinning's ``ScorecardMonitoring`` on the same data,
bins and score bins, and read through the prediction log of a served scorecard."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from optbinning import BinningProcess
from optbinning import Scorecard as OptScorecard
from optbinning.scorecard import ScorecardMonitoring
from pandas.errors import Pandas4Warning
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loanrisk.cli import app as cli
from loanrisk.monitoring.drift import psi
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.points import (
    NOT_A_SCORECARD,
    characteristic_analysis,
    points_for,
    system_stability,
)
from loanrisk.monitoring.profile import Profile, numeric_bins
from loanrisk.monitoring.score_bins import score_bins
from loanrisk.registry import ModelRegistry
from loanrisk.registry.models import PROFILE_FILE
from loanrisk.registry.scaling import Scaling
from loanrisk.registry.scorecard import Characteristic, Scorecard, ScorecardBin
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage

NAME = "loan-default"
SCALING = Scaling(points=600, odds=50, pdo=20)


def _loans(rng: np.random.Generator, n: int, shift: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Loans of three attributes and their default flags; ``shift`` moves the population
    (higher incomes, more debt, more renters)."""
    income = rng.lognormal(10 + shift, 0.5, n)
    dti = rng.uniform(0, 40, n) + 5 * shift
    home = rng.choice(["RENT", "OWN", "MORTGAGE"], n, p=[0.5 - shift / 2, 0.2, 0.3 + shift / 2])
    logit = -2 + 0.04 * dti - 0.6 * (np.log(income) - 10) + 0.5 * (home == "RENT")
    flags = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame({"income": income, "dti": dti, "home": home}), flags


class Reference:
    """optbinning's scorecard and monitoring, fitted on development loans, and ours built
    from its bins and (whole) points, so both score every loan alike."""

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.x_e, self.y_e = _loans(rng, 4_000, 0.0)
        self.x_a, self.y_a = _loans(rng, 1_500, 0.3)
        process = BinningProcess(["income", "dti", "home"], categorical_variables=["home"])
        with warnings.catch_warnings():
            # optbinning fills its tables the way pandas 4 will refuse (its deprecation).
            warnings.simplefilter("ignore", Pandas4Warning)
            self.optb = OptScorecard(
                process,
                LogisticRegression(),
                scaling_method="pdo_odds",
                scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
                rounding=True,
            ).fit(self.x_e, self.y_e)
            self.monitoring = ScorecardMonitoring(self.optb).fit(
                self.x_a, self.y_a, self.x_e, self.y_e
            )
            self.table = self.optb.table(style="detailed")
            self.detailed = self.monitoring.psi_variable_table(style="detailed")
            self.psi_table = self.monitoring.psi_table()
        self.ours = Scorecard(
            scaling=SCALING,
            intercept=0.0,
            base_points=0,
            characteristics=[self._characteristic(n) for n in ("income", "dti", "home")],
        )

    def _characteristic(self, name: str) -> Characteristic:
        optb = self.optb.binning_process_.get_binned_variable(name)
        rows = self.table[self.table.Variable == name].reset_index(drop=True)
        numeric = optb.dtype == "numerical"
        splits = [float(s) for s in optb.splits] if numeric else []
        bins = []
        for i, row in rows.iterrows():
            label, index = str(row["Bin"]), int(str(i))
            common = {
                "label": label,
                "count": int(row["Count"]),
                "events": int(row["Event"]),
                "woe": float(row["WoE"]),
                "points": int(row["Points"]),
            }
            if label == "Special":
                continue  # no special codes here: optbinning's bin is empty
            if label == "Missing":
                bins.append(ScorecardBin(kind="missing", **common))
            elif numeric:
                lower = splits[index - 1] if index > 0 else None
                upper = splits[index] if index < len(splits) else None
                bins.append(ScorecardBin(kind="range", lower=lower, upper=upper, **common))
            else:
                group = [str(c) for c in optb.splits[index]]
                bins.append(ScorecardBin(kind="categories", categories=group, **common))
        return Characteristic(
            name=name,
            type="numeric" if numeric else "categorical",
            coefficient=1.0,
            edges=splits,
            bins=bins,
        )

    def our_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Our scorecard's scores of ``frame``."""
        columns = [
            c.indices(frame[c.name].to_numpy(dtype=float if c.type == "numeric" else object))
            for c in self.ours.characteristics
        ]
        return self.ours.scores(np.column_stack(columns))


def _window_counts(reference: Reference, c: Characteristic) -> np.ndarray:
    """The window's loans (optbinning's actual sample) in each bin of ``c``."""
    values = reference.x_a[c.name].to_numpy(dtype=float if c.type == "numeric" else object)
    return np.bincount(c.indices(values), minlength=len(c.bins))


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference()


def test_both_scorecards_score_every_loan_alike(reference: Reference) -> None:
    for frame in (reference.x_e, reference.x_a):
        assert np.array_equal(reference.our_scores(frame), reference.optb.score(frame))


def test_the_system_stability_equals_optbinnings_psi_table(reference: Reference) -> None:
    expected_scores = reference.our_scores(reference.x_e)
    bins = score_bins(expected_scores, reference.y_e)
    # The same score bins: CART of the default flag on the development scores.
    assert np.array_equal(bins.edges, reference.monitoring.psi_splits)
    profile = Profile(
        rows=len(expected_scores),
        probability_rows=len(expected_scores),
        features={},
        probability=numeric_bins(np.full(len(expected_scores), 0.1)),
        points=bins,
    )
    actual_scores = reference.our_scores(reference.x_a)
    ours = system_stability(actual_scores, np.zeros(len(actual_scores)), profile, SCALING)
    theirs = reference.psi_table
    body = theirs.iloc[:-1]
    assert ours.source == "profile"
    assert [b.count_actual for b in ours.bins] == body["Count A"].astype(int).tolist()
    assert [b.count_expected for b in ours.bins] == body["Count E"].astype(int).tolist()
    np.testing.assert_allclose([b.actual for b in ours.bins], body["Count A (%)"], atol=1e-9)
    np.testing.assert_allclose([b.expected for b in ours.bins], body["Count E (%)"], atol=1e-9)
    np.testing.assert_allclose([b.psi for b in ours.bins], body["PSI"], atol=1e-9)
    assert ours.psi == pytest.approx(float(theirs.loc["Totals", "PSI"]), abs=1e-9)
    assert (ours.rows_actual, ours.rows_expected) == (len(reference.x_a), len(reference.x_e))
    assert ours.band == ("stable" if ours.psi < 0.1 else "investigate")


def test_the_characteristic_tables_equal_optbinnings_with_the_points_shift(
    reference: Reference,
) -> None:
    detailed = reference.detailed
    for c in reference.ours.characteristics:
        ours = characteristic_analysis(c, _window_counts(reference, c))
        theirs = detailed[detailed.Variable == c.name]
        regular = ours.bins[: c.regular]
        assert [b.bin for b in regular] == [str(label) for label in theirs["Bin"]]
        assert [b.count_actual for b in regular] == theirs["Count A"].tolist()
        assert [b.count_expected for b in regular] == theirs["Count E"].tolist()
        np.testing.assert_allclose([b.actual for b in regular], theirs["Count A (%)"], atol=1e-9)
        np.testing.assert_allclose([b.expected for b in regular], theirs["Count E (%)"], atol=1e-9)
        np.testing.assert_allclose([b.psi for b in regular], theirs["PSI"], atol=1e-9)
        assert ours.psi == pytest.approx(float(theirs["PSI"].sum()), abs=1e-9)
        # No missing value on either side: the missing bin holds nothing.
        assert [(b.count_actual, b.count_expected) for b in ours.bins[c.regular :]] == [(0, 0)]
        # Siddiqi's characteristic analysis: sum of (actual - expected share) x points,
        # with the points of optbinning's own table.
        points = reference.table[reference.table.Variable == c.name]["Points"].to_numpy()
        shares = theirs["Count A (%)"].to_numpy() - theirs["Count E (%)"].to_numpy()
        assert ours.points_shift == pytest.approx(
            float(np.sum(shares * points[: len(shares)])), abs=1e-9
        )
    # Richer, more indebted, fewer renters: points gained on income and home, lost on debt.
    shift = {
        c.name: characteristic_analysis(c, _window_counts(reference, c)).points_shift
        for c in reference.ours.characteristics
    }
    assert shift["dti"] < 0 < min(shift["income"], shift["home"])


def test_an_empty_bin_keeps_the_index_finite(reference: Reference) -> None:
    c = reference.ours.by_name["dti"]
    actual = np.zeros(len(c.bins), dtype=np.int64)
    actual[0] = 100  # every loan in the first bin: optbinning's PSI is infinite here
    analysis = characteristic_analysis(c, actual)
    assert np.isfinite(analysis.psi) and analysis.band == "shift"
    assert analysis.bins[0].actual == 1.0


# --- Through the prediction log of a served scorecard -----------------------------------


@pytest.fixture(scope="module")
def logged(root: Path, tmp_path_factory: pytest.TempPathFactory, raw_loans: pd.DataFrame) -> Path:
    """A copy of the scorecard storage: 100 loans scored over HTTP by the XGBoost champion
    (1), then production moved to the scorecard (2) and 250 scored by it (200, and 50 of them
    again); the log is flushed when the app stops."""
    path = tmp_path_factory.mktemp("points") / "store"
    shutil.copytree(root, path)
    frame = raw_loans.drop(columns=["loan_status"]).head(200)
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    with _client(path) as client:
        trees = client.post("/v1/predict", json={"records": records[:100]})
        assert trees.status_code == 200, trees.text
        moved = client.put(f"/v1/models/{NAME}/aliases/production", json={"version": 2})
        assert moved.status_code == 200, moved.text
        answer = client.post("/v1/predict", json={"records": records})
        assert answer.status_code == 200, answer.text
        again = client.post("/v1/predict", json={"records": records[:50]})
        assert again.status_code == 200, again.text
    return path


def _client(path: Path) -> TestClient:
    return TestClient(
        create_app(Settings(storage=str(path), nthread=1, log_flush_seconds=0.2, drift_interval=0))
    )


def test_the_points_report_reads_the_scorecards_logged_loans(logged: Path) -> None:
    with _client(logged) as client:
        answer = client.get(f"/v1/models/{NAME}/drift/points", params={"version": "2"})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        unknown = client.get("/v1/models/nobody/drift/points")
        assert unknown.status_code == 404, unknown.text
        backwards = client.get(
            f"/v1/models/{NAME}/drift/points",
            params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        )
        assert backwards.status_code == 422, backwards.text
        assert backwards.json()["error"]["details"]["field"] == "since"
    assert (body["kind"], body["version"], body["rows"], body["rejected"]) == (
        "scorecard",
        2,
        250,
        0,
    )
    system = body["system"]
    # The development sample's score bins were recorded at training.
    assert system["source"] == "profile"
    assert system["rows_actual"] == 250
    assert sum(b["count_actual"] for b in system["bins"]) == 250
    assert system["psi"] == pytest.approx(sum(b["psi"] for b in system["bins"]), abs=1e-5)
    scorecard = ModelRegistry(FsspecStorage(str(logged)), "models").load(NAME, 2).scorecard
    assert scorecard is not None
    names = {c["name"] for c in body["characteristics"]}
    assert names == {c.name for c in scorecard.characteristics}
    shifts = [abs(c["points_shift"]) for c in body["characteristics"]]
    assert shifts == sorted(shifts, reverse=True)
    for c in body["characteristics"]:
        bins = scorecard.by_name[c["name"]].bins
        assert [b["points"] for b in c["bins"]] == [b.points for b in bins]
        assert [b["count_expected"] for b in c["bins"]] == [b.count for b in bins]
        assert sum(b["count_actual"] for b in c["bins"]) == 250
        total = sum((b["actual"] - b["expected"]) * b["points"] for b in c["bins"])
        assert c["points_shift"] == pytest.approx(total, abs=1e-4)
    assert body["characteristics_note"] is None
    # The window's bins, read back from the log, are the ones the loans were scored in: the
    # base points plus their shares' points give the mean served score.
    storage = FsspecStorage(str(logged))
    log = read_log(storage, storage.resolve("prediction-log"), model=NAME, version=2)
    read_back = scorecard.base_points + sum(
        full.actual * full.points
        for c in points_for(
            storage, ModelRegistry(storage, "models"), "prediction-log", NAME, 2
        ).characteristics
        for full in c.bins
    )
    assert read_back == pytest.approx(float(log["score"].mean()), abs=1e-9)


def test_the_command_line_reports_points_and_says_why_xgboost_has_no_characteristics(
    logged: Path,
) -> None:
    runner = CliRunner()
    table = runner.invoke(
        cli, ["monitor", "points", "--model", f"{NAME}@2", "--storage", str(logged)]
    )
    assert table.exit_code == 0, table.output
    assert "score (system)" in table.output and "points shift" in table.output
    trees = runner.invoke(
        cli,
        ["monitor", "points", "--model", f"{NAME}@1", "--storage", str(logged), "--json"],
    )
    assert trees.exit_code == 0, trees.output
    report = json.loads(trees.output)
    assert report["kind"] == "xgboost" and report["characteristics"] == []
    assert report["characteristics_note"] == NOT_A_SCORECARD
    system = report["system"]
    assert (report["rows"], system["source"], system["rows_actual"]) == (100, "profile", 100)
    assert len(system["bins"]) >= 2  # CART found bins in the development scores


def test_an_older_profile_reads_the_probability_bins_in_points(logged: Path) -> None:
    """A profile written before score bins were: the development distribution is its
    probability bins, read in points; the index is then the probability's PSI."""
    registry = ModelRegistry(FsspecStorage(str(logged)), "models")
    stored = registry.file(NAME, 2, PROFILE_FILE)
    assert stored is not None
    profile = Profile.model_validate_json(stored)
    assert profile.points is not None
    older = profile.model_copy(update={"points": None})
    probability = np.linspace(0.01, 0.6, 300)
    scores = SCALING.scores_of(probability)
    ours = system_stability(scores, probability, older, SCALING)
    assert ours.source == "probability"
    expected = np.asarray(profile.probability.counts[:-1])
    assert ours.psi == pytest.approx(psi(expected, profile.probability.count(probability)[:-1]))
    assert [b.count_expected for b in ours.bins] == expected[::-1].tolist()
    assert ours.bins[0].bin.startswith("[-inf, ") and ours.bins[-1].bin.endswith(", inf)")
    # Points ascend along the bins: the highest PD's bin comes first.
    assert ours.bins[0].count_actual == int(profile.probability.count(probability)[-2])
