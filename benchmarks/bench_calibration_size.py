"""How many held-out loans a calibration needs before it stops making the PD worse.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_calibration_size.py \
        [--data credit credit-5pct pakdd] [--variants reference weighted] [--seeds 0 1 2] \
        [--draws 20] [--rounds 500]

The bounds of ``loanrisk.registry.calibration.MIN_HELD_OUT`` come from its output of
2026-12-06 (benchmarks/README.md, docs/training.md).

Per data set and seed: the loans are read and validated with loanrisk's loaders and processed
into a dataset (75/25 split, seeded); the training split is cut (stratified) into rows the
booster trains on (70%, the reference's parameters) and a pool of held-out rows (30%). From
the pool, calibration sets of ``d`` defaults and the non-defaults that keep the pool's default
rate are drawn (``--draws`` times per seed, without replacement); ``isotonic`` and ``platt``
are fitted on each with :func:`loanrisk.registry.calibration.fit_calibration`, the code the
training job runs, and the test split's Brier score is compared with the uncalibrated
booster's. The table prints, per size, the mean change in Brier (negative: better), its
standard error, the mean change relative to the uncalibrated Brier, and the share of draws
that made the test Brier worse; then the smallest size from which every larger one helps.

Data sets: ``credit`` is the public credit risk dataset (21.8% defaults); ``credit-5pct``
is the same loans with defaults thinned at random to 5% (the same defaults count then comes
with four times as many rows, which shows whether rows or defaults decide); ``pakdd`` is
the PAKDD 2009 credit-card file (19.8% bad), its schema drafted by ``loanrisk schema infer``.
Models: ``reference`` (loanrisk's default) and ``weighted`` (defaults weighted 2 to 1).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.data.split import split_indices
from loanrisk.features.transform import FeatureTransformer
from loanrisk.registry.calibration import fit_calibration
from loanrisk.schema import LoanSchema, Validated, builtin_schema
from loanrisk.schema.infer import infer_schema
from loanrisk.storage import MemoryStorage
from loanrisk.training.train import DEFAULT_PARAMS, train_booster

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Defaults in a calibration set; the non-defaults follow at the pool's default rate.
DEFAULTS = (5, 10, 20, 30, 40, 50, 60, 80, 100, 120, 160, 200, 240, 320, 640, 1280)
#: Share of the training split held out as the pool calibration sets are drawn from.
POOL = 0.3
METHODS = ("isotonic", "platt")
#: Models calibrated: the reference's (loanrisk's default), and the same with defaults
#: weighted 2 to 1, a common answer to imbalance that inflates every PD (a model that needs
#: its calibration).
VARIANTS: dict[str, dict[str, float]] = {
    "reference": {},
    "weighted": {"scale_pos_weight": 2.0},
}


def _credit(thin_to: float | None = None) -> Callable[[], tuple[Validated, LoanSchema]]:
    def load() -> tuple[Validated, LoanSchema]:
        loans = read_csv(str(DATA / "credit_risk_dataset.csv"))
        schema = builtin_schema()
        if thin_to is not None:
            frame = loans.frame
            labels = frame[schema.label_name].to_numpy()
            defaults, repaid = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
            keep = round(thin_to * repaid.size / (1 - thin_to))
            chosen = np.random.default_rng(0).choice(defaults, keep, replace=False)
            rows = np.sort(np.concatenate([repaid, chosen]))
            loans = Validated(frame.take(rows).reset_index(drop=True), loans.report)
        return loans, schema

    return load


def _pakdd() -> tuple[Validated, LoanSchema]:
    """The PAKDD 2009 file as a lender would bring it: tab-separated with a trailing tab;
    the 12 rows whose fields are shifted (label ``N``) are left out."""
    raw = pd.read_csv(
        DATA / "pakdd2009_credit_card.tsv", sep="\t", dtype="string", keep_default_na=False
    )
    raw = raw.loc[:, [c for c in raw.columns if not c.startswith("Unnamed")]]
    raw = raw[raw["TARGET_LABEL_BAD=1"].isin(["0", "1"])]
    text = raw.to_csv(index=False).encode()
    draft = infer_schema(io.BytesIO(text), label="TARGET_LABEL_BAD=1", name="pakdd2009")
    # A fixed vocabulary: categories the draft's sample did not see are missing, not errors.
    columns = [
        c.model_copy(update={"unknown": "missing"}) if c.categories else c
        for c in draft.schema.columns
    ]
    schema = draft.schema.model_copy(update={"columns": tuple(columns)})
    schema = LoanSchema.model_validate(schema.model_dump())
    return read_csv(text, schema=schema, on_error="drop"), schema


LOADERS: dict[str, Callable[[], tuple[Validated, LoanSchema]]] = {
    "credit": _credit(),
    "credit-5pct": _credit(0.05),
    "pakdd": _pakdd,
}


def _brier(probability: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probability - labels) ** 2))


Cells = dict[int, dict[str, list[float]]]


def measure(
    name: str, variants: list[str], *, seeds: list[int], draws: int, rounds: int, nthread: int
) -> dict[str, Cells]:
    """Per model variant and defaults count: the changes in test Brier per method (and
    relative to the uncalibrated Brier), and the set's rows."""
    loans, schema = LOADERS[name]()
    label = schema.label_name
    out: dict[str, Cells] = {variant: {} for variant in variants}
    for seed in seeds:
        storage = MemoryStorage()
        manifest = process_dataset(loans, storage, source=name, seed=seed, schema=schema)
        catalogue = DatasetCatalogue(storage, "data")
        transformer = FeatureTransformer(catalogue.load_spec(manifest.id))
        train = catalogue.load_split(manifest.id, "train")
        test = catalogue.load_split(manifest.id, "test")
        features = transformer.transform(train, dtype=np.float32)
        labels = train[label].to_numpy().astype(np.int64)
        fit_rows, pool_rows = split_indices(labels, len(labels), test_fraction=POOL, seed=seed)
        test_x = transformer.transform(test, dtype=np.float32)
        test_y = test[label].to_numpy().astype(np.int64)
        pool_y = labels[pool_rows]
        for variant in variants:
            clock = time.perf_counter()
            booster = train_booster(
                features[fit_rows],
                labels[fit_rows],
                rounds=rounds,
                params={**DEFAULT_PARAMS, **VARIANTS[variant]},
                nthread=nthread,
            ).booster

            def raw(x: np.ndarray, booster: xgb.Booster = booster) -> np.ndarray:
                return np.asarray(booster.predict(xgb.DMatrix(x, nthread=nthread)), np.float64)

            pool_p, test_p = raw(features[pool_rows]), raw(test_x)
            before = _brier(test_p, test_y)
            print(
                f"  {name} {variant} seed {seed}: trained on {len(fit_rows):,} rows "
                f"({time.perf_counter() - clock:.0f} s); pool {pool_y.size:,} rows, "
                f"{int(pool_y.sum()):,} defaults; uncalibrated test Brier {before:.4f}",
                flush=True,
            )
            _draw(
                out[variant],
                pool_p,
                pool_y,
                test_p,
                test_y,
                before,
                rng=np.random.default_rng([seed, 1]),
                draws=draws,
            )
    return out


def _draw(
    cells: Cells,
    pool_p: np.ndarray,
    pool_y: np.ndarray,
    test_p: np.ndarray,
    test_y: np.ndarray,
    before: float,
    *,
    rng: np.random.Generator,
    draws: int,
) -> None:
    defaults, repaid = np.flatnonzero(pool_y == 1), np.flatnonzero(pool_y == 0)
    rate = defaults.size / pool_y.size
    for d in [d for d in DEFAULTS if d <= defaults.size]:
        m = round(d * (1 - rate) / rate)
        if m > repaid.size:
            continue
        empty = {key: [] for method in METHODS for key in (method, method + "%")}
        cell = cells.setdefault(d, {"rows": [], **empty})
        for _ in range(draws):
            rows = np.concatenate(
                [rng.choice(defaults, d, replace=False), rng.choice(repaid, m, replace=False)]
            )
            cell["rows"].append(float(rows.size))
            for method in METHODS:
                fitted = fit_calibration(method, pool_p[rows], pool_y[rows])  # type: ignore[arg-type]
                change = _brier(fitted.apply(test_p), test_y) - before
                cell[method].append(change)
                cell[method + "%"].append(100 * change / before)


def _bound(cells: Cells, method: str) -> int | None:
    """The smallest defaults count from which every larger size's mean change is <= 0."""
    bound = None
    for d in sorted(cells, reverse=True):
        if statistics.fmean(cells[d][method]) > 0:
            break
        bound = d
    return bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(LOADERS), default=["credit"])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--draws", type=int, default=20, help="calibration sets per seed")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--nthread", type=int, default=2)
    args = parser.parse_args()

    runs = len(args.seeds) * args.draws
    tables = {
        name: measure(
            name,
            args.variants,
            seeds=args.seeds,
            draws=args.draws,
            rounds=args.rounds,
            nthread=args.nthread,
        )
        for name in args.data
    }
    print(
        f"\nChange in test Brier after calibration (negative: better), mean over {runs} "
        f"calibration sets ({len(args.seeds)} seeds x {args.draws} draws) ± its standard "
        "error, the mean change relative to the uncalibrated Brier, and the share of sets "
        "that made the Brier worse."
    )
    for name, variants in tables.items():
        for variant, cells in variants.items():
            print(f"\n{name}, {variant} model")
            print(
                f"{'defaults':>9}{'rows':>7}"
                + "".join(f"{m + ' ΔBrier':>24}{'rel.':>8}{'worse':>7}" for m in METHODS)
            )
            for d, cell in sorted(cells.items()):
                line = f"{d:>9}{statistics.fmean(cell['rows']):>7.0f}"
                for method in METHODS:
                    changes = cell[method]
                    error = statistics.stdev(changes) / len(changes) ** 0.5
                    worse = sum(c > 0 for c in changes) / len(changes)
                    relative = statistics.fmean(cell[method + "%"])
                    line += (
                        f"{statistics.fmean(changes):>+15.4f} ±{error:.4f}"
                        f"{relative:>+7.1f}%{worse:>7.0%}"
                    )
                print(line)
            for method in METHODS:
                bound = _bound(cells, method)
                text = f"{bound} defaults" if bound is not None else "none of the sizes measured"
                print(f"{name}, {variant}: {method} helps on average from {text} on")


if __name__ == "__main__":
    main()
