"""The scorer: records, frames and CSV agree; bad input is precise; reasons; hot swap."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from loanrisk.errors import Conflict, InvalidInput
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.cache import ModelCache
from loanrisk.inference.explain import attribute_matrix
from loanrisk.inference.records import CleanRecord, clean_record
from loanrisk.inference.scorer import Bands, BatchOptions, Scorer
from loanrisk.registry import LoadedModel, ModelRegistry
from loanrisk.schema import Validated
from loanrisk.storage import FsspecStorage, MemoryStorage
from tests.builtin import EXAMPLE_LOAN, FEATURES, LABEL

from ..conftest import REAL_CSV

RECORD = EXAMPLE_LOAN


@pytest.fixture(scope="module")
def scorer(model: LoadedModel) -> Scorer:
    return Scorer(model)


def raw_records(real_loans: Validated, n: int) -> list[dict[str, Any]]:
    frame = pd.read_csv(REAL_CSV, nrows=n).drop(columns=[LABEL])
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def test_single_record_path_equals_batch_and_csv_paths(
    scorer: Scorer, real_loans: Validated
) -> None:
    records = raw_records(real_loans, 500)
    single = [scorer.score_record(r).probability for r in records]
    many = [r.probability for r in scorer.score_records(records).results]
    frame, _ = scorer.score_frame(pd.DataFrame(records))
    out = io.BytesIO()
    csv_bytes = pd.DataFrame(records).to_csv(index=False).encode()
    summary = scorer.score_csv(io.BytesIO(csv_bytes), out, BatchOptions(chunk_rows=128))
    from_csv = pd.read_csv(io.BytesIO(out.getvalue()))
    np.testing.assert_allclose(single, many, atol=1e-7)
    np.testing.assert_allclose(single, frame["probability"], atol=1e-7)
    np.testing.assert_allclose(single, from_csv["probability"], atol=1e-7)
    assert from_csv["row"].tolist() == list(range(1, 501))
    assert summary.scored == 500
    assert summary.scorer.backend == "onedal"
    features = FeatureTransformer(scorer.model.spec).transform(real_loans.frame.head(500))
    expected = scorer.model.booster.predict(xgb.DMatrix(features.astype(np.float32)))
    np.testing.assert_allclose(single, expected, atol=1e-5)


def test_result_shape_label_and_band(scorer: Scorer) -> None:
    result = scorer.score_record(RECORD)
    assert (result.reasons, result.decline_reasons) == (None, None)
    assert result.version == scorer.version
    assert result.label == (result.probability > 0.5)
    assert result.band == Bands().of(result.probability)
    strict = Scorer(scorer.model, threshold=0.99, bands=Bands((0.5,), ("ok", "bad")))
    assert strict.score_record(RECORD).label is False
    assert strict.describe().to_json()["bands"] == {"cutoffs": [0.5], "names": ["ok", "bad"]}
    with pytest.raises(InvalidInput, match="ascending cut-offs"):
        Bands((0.5, 0.2), ("a", "b", "c"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loan_amnt": -5}, "loan_amnt: impossible value -5 (must be at least 0)"),
        ({"person_age": "old"}, "person_age: not a number ('old')"),
        ({"person_age": True}, "person_age: true/false is not a number"),
        ({"loan_grade": True}, "loan_grade: expected text, got True"),
        ({"loan_grade": [1], "loan_amnt": "x"}, "loan_amnt: not a number ('x'); loan_grade"),
    ],
)
def test_bad_records_are_rejected_naming_the_field(
    scorer: Scorer, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        scorer.score_record({**RECORD, **change})
    assert caught.value.message.startswith(message)


def test_a_category_coded_as_a_number_reads_as_the_file_writes_it(scorer: Scorer) -> None:
    """A lender's JSON built from a file of coded categories sends ``1`` for ``"1"``: it
    is that category's text, as CSV reads it (here an undeclared one, scored with a
    warning, as the text would be)."""
    as_number = scorer.score_record({**RECORD, "loan_grade": 3})
    as_text = scorer.score_record({**RECORD, "loan_grade": "3"})
    assert as_number.probability == as_text.probability
    assert any("unknown category 3" in w for w in as_number.warnings)


def test_unknown_categories_and_missing_optional_values_are_scored_and_flagged(
    scorer: Scorer,
) -> None:
    result = scorer.score_record(
        {**RECORD, "loan_intent": "holiday", "loan_int_rate": None, "branch": "north"}
    )
    assert 0 <= result.probability <= 1
    assert any("loan_intent: unknown category 'holiday'" in w for w in result.warnings)
    (median,) = [c.median for c in scorer.model.spec.imputed if c.name == "loan_int_rate"]
    assert (
        f"loan_int_rate: missing, scored with the training median {median:g} in its place"
        in result.warnings
    )
    assert "ignored field(s): branch" in result.warnings
    assert isinstance(clean_record({**RECORD, "person_age": " 30 "}), CleanRecord)
    assert clean_record("not a mapping") != []  # type: ignore[arg-type]


def test_missing_values_anywhere_are_scored_as_missing_with_a_warning(scorer: Scorer) -> None:
    result = scorer.score_record(
        {**RECORD, "person_income": None, "loan_grade": " ", "person_age": ""}
    )
    assert 0 <= result.probability <= 1
    left = "scored as missing (each tree takes the branch it learned for missing values)"
    assert f"person_income: missing, {left}" in result.warnings  # power: NaN to the trees
    assert f"person_age: missing, {left}" in result.warnings
    assert (
        "loan_grade: missing, scored as none of its categories (every one-hot column 0)"
        in result.warnings
    )
    huge = scorer.score_record({**RECORD, "person_income": 1e308})
    assert any("person_income: 1e+308 is outside the plausible range" in w for w in huge.warnings)


def test_a_batch_with_bad_rows_is_refused_or_scored_without_them(scorer: Scorer) -> None:
    records = [RECORD, {**RECORD, "loan_amnt": -1}, RECORD, {**RECORD, "person_age": "old"}]
    with pytest.raises(InvalidInput, match="record 1: loan_amnt"):
        scorer.score_records(records)
    skipped = scorer.score_records(records, on_error="skip")
    assert [r.record for r in skipped.results] == [0, 2]
    assert [r.record for r in skipped.rejected] == [1, 3]
    frame = pd.DataFrame(records)
    results, report = scorer.score_frame(frame, on_error="skip")
    assert results["row"].tolist() == [1, 3]
    assert report.rejected_rows == [2, 4]
    with pytest.raises(InvalidInput, match="at row 2"):
        scorer.score_frame(frame)


def test_csv_rows_are_numbered_across_chunks_and_ids_are_kept(scorer: Scorer) -> None:
    rows = [dict(RECORD, loan_id=f"L{i}") for i in range(10)]
    rows[7]["loan_amnt"] = "lots"
    data = pd.DataFrame(rows).to_csv(index=False).encode()
    out = io.BytesIO()
    summary = scorer.score_csv(
        io.BytesIO(data), out, BatchOptions(chunk_rows=3, on_error="skip", id_column="loan_id")
    )
    assert (summary.scored, summary.rejected, summary.rejected_rows) == (9, 1, [8])
    written = pd.read_csv(io.BytesIO(out.getvalue()))
    assert list(written.columns) == [
        "row",
        "loan_id",
        "probability",
        "label",
        "band",
        "grade",
        "score",
    ]
    assert written["loan_id"].tolist() == [f"L{i}" for i in range(10) if i != 7]
    with pytest.raises(InvalidInput, match="at row 8"):
        scorer.score_csv(io.BytesIO(data), io.BytesIO(), BatchOptions(chunk_rows=3))
    with pytest.raises(InvalidInput, match="binary data"):
        scorer.score_csv(io.BytesIO(b"\x00\x01PK"), io.BytesIO())
    with pytest.raises(InvalidInput, match="id column 'nope'"):
        scorer.score_csv(io.BytesIO(data), io.BytesIO(), BatchOptions(id_column="nope"))


def test_reason_codes_match_a_direct_pred_contribs_computation(scorer: Scorer) -> None:
    result = scorer.score_record(RECORD, explain=True, top_k=3)
    clean = clean_record(RECORD)
    assert isinstance(clean, CleanRecord)
    row = np.array([scorer.encoder.encode_record(clean)], dtype=np.float32)
    contributions = scorer.model.booster.predict(xgb.DMatrix(row), pred_contribs=True)[0, :-1]
    by_attribute: dict[str, float] = {}
    for column, value in zip(scorer.model.spec.output_columns, contributions, strict=True):
        attribute = column.split("=", 1)[0]
        by_attribute[attribute] = by_attribute.get(attribute, 0.0) + float(value)
    expected = sorted((v, k) for k, v in by_attribute.items() if v > 0)[::-1][:3]
    reasons = result.reasons
    assert [r.feature for r in reasons] == [k for _, k in expected]
    for reason, (value, _) in zip(reasons, expected, strict=True):
        assert reason.contribution == pytest.approx(value, abs=1e-5)
        assert reason.value == clean.values[reason.feature]
    attributes, matrix = attribute_matrix(scorer.model.spec)
    assert sorted(attributes) == sorted(FEATURES)
    assert matrix.sum() == len(scorer.model.spec.output_columns)
    assert scorer.score_record(RECORD).reasons is None


def test_hot_swap_under_concurrent_scoring_never_fails_a_request(
    trained: tuple[MemoryStorage, str],
) -> None:
    storage, _ = trained
    registry = ModelRegistry(storage)
    registry.promote("loan-default", 1)
    cache = ModelCache(registry, "loan-default")
    with pytest.raises(Conflict, match="no model to score with"):
        cache.current()
    assert cache.refresh() is True
    assert cache.refresh() is False
    failures: list[BaseException] = []
    versions: set[int] = set()
    stop = threading.Event()

    def score_forever() -> None:
        while not stop.is_set():
            try:
                scorer = cache.current()
                scorer.score_record(RECORD)
                versions.add(scorer.version)
            except BaseException as exc:  # any failure at all fails the test
                failures.append(exc)

    threads = [threading.Thread(target=score_forever) for _ in range(4)]
    for t in threads:
        t.start()
    for target in (2, 1, 2, 1, 2):
        registry.promote("loan-default", target)
        assert cache.refresh() is True
        assert cache.current().version == target
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert versions == {1, 2}
    assert len(cache._scorers) == 2  # each version converted once, then reused


BOUNDED = """
import json, resource, sys
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage
from loanrisk.inference.scorer import Scorer
scorer = Scorer(ModelRegistry(FsspecStorage(sys.argv[1])).load("loan-default", "latest"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with open(sys.argv[2], "rb") as source, open(sys.argv[3], "wb") as output:
    summary = scorer.score_csv(source, output)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after, "scored": summary.scored}))
"""


@pytest.mark.slow
def test_a_million_row_csv_streams_in_bounded_memory(
    tmp_path: Path, model: LoadedModel, real_loans: Validated
) -> None:
    from loanrisk.data.expand import expand

    registry = ModelRegistry(FsspecStorage(str(tmp_path / "store")))
    registry.publish("loan-default", booster=model.booster, spec=model.spec, report={}, metadata={})
    big = expand(real_loans.frame, 1_000_000, seed=1).drop(columns=[LABEL])
    source = tmp_path / "loans.csv"
    big.to_csv(source, index=False, float_format="%.4f")
    del big
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BOUNDED,
            str(tmp_path / "store"),
            str(source),
            str(tmp_path / "scores.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    figures = json.loads(done.stdout)
    assert figures["scored"] == 1_000_000
    peak, loaded = figures["after"] / 2**20, figures["before"] / 2**20
    print(f"peak RSS: {loaded:.0f} MiB with the model loaded, {peak:.0f} MiB after 1M rows")
    # Reading the whole ~95 MB CSV into pandas alone takes ~240 MiB more (measured); 100k-row
    # chunks keep the whole run within a small working set over the loaded model.
    assert peak < loaded + 120, figures
    with (tmp_path / "scores.csv").open() as written:
        assert sum(1 for _ in written) == 1_000_001


def test_parquet_scores_like_csv_with_rows_numbered_across_batches(scorer: Scorer) -> None:
    rows = [dict(RECORD, person_income=30_000 + 1_000 * i) for i in range(10)]
    rows[4]["loan_amnt"] = -3
    frame = pd.DataFrame(rows)
    parquet, csv_out, parquet_out = io.BytesIO(), io.BytesIO(), io.BytesIO()
    frame.to_parquet(parquet)
    parquet.seek(0)
    options = BatchOptions(chunk_rows=3, on_error="skip")
    from_parquet = scorer.score_parquet(parquet, parquet_out, options)
    from_csv = scorer.score_csv(io.BytesIO(frame.to_csv(index=False).encode()), csv_out, options)
    assert from_parquet.rejected_rows == from_csv.rejected_rows == [5]
    assert parquet_out.getvalue() == csv_out.getvalue()
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        scorer.score_parquet(io.BytesIO(b"PAR1 not really"), io.BytesIO())


def test_the_rejected_count_is_exact_beyond_the_listed_rows(scorer: Scorer) -> None:
    from loanrisk.schema import MAX_REJECTED_ROWS

    bad = MAX_REJECTED_ROWS + 50
    frame = pd.DataFrame([RECORD] * 5 + [{**RECORD, "loan_amnt": -1}] * bad)
    summary = scorer.score_csv(
        io.BytesIO(frame.to_csv(index=False).encode()), None, BatchOptions(on_error="skip")
    )
    assert (summary.scored, summary.rejected) == (5, bad)
    assert len(summary.rejected_rows) == MAX_REJECTED_ROWS
    assert summary.rejected_rows[0] == 6
