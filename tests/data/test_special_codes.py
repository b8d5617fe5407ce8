"""Special codes treated as missing, kept beside a dataset's splits (issue 28): the model
still sees a missing value, and the binning engine gives each declared code a bin of its own.

Hypothesis draws the schema and its loans (tests/schema/generated.py): numbers, integers,
categorical and ordinal columns with codes, blanks, unknown categories, on an input split as
it is or expanded. A dataset stored without the codes (as before they were kept) still loads
and bins as it did.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from loanrisk.binning import BinningLimits, fit_schema, with_codes
from loanrisk.contracts import DatasetManifest
from loanrisk.data.characteristics import compute
from loanrisk.data.datasets import DatasetCatalogue, special_file
from loanrisk.data.process import process_dataset
from loanrisk.errors import HashMismatch
from loanrisk.schema import LoanSchema, Validated, validate_chunks, validate_frame
from loanrisk.storage import MemoryStorage
from tests.schema.generated import ROWS, loans_of, schemas

EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = BinningLimits(max_bins=4, time_limit=5)


def _without_codes(loans: Validated) -> Validated:
    """The loans as validation gave them before codes were kept."""
    return dataclasses.replace(loans, special=pd.DataFrame(index=loans.frame.index))


def _coded(schema: LoanSchema) -> list[str]:
    return [c.name for c in schema.features if c.special_missing]


@EXAMPLES
@given(schema=schemas(), seed=st.integers(0, 2**16), expand=st.booleans())
def test_each_code_a_loan_held_is_stored_beside_its_split_and_binned_on_its_own(
    schema: LoanSchema, seed: int, expand: bool
) -> None:
    loans = validate_frame(loans_of(schema, seed), schema=schema, on_error="drop")
    coded = _coded(schema)
    assert list(loans.special.columns) == coded
    for name in coded:  # what validation counted, it kept: code by code
        assert int(loans.special[name].notna().sum()) == loans.report.special[name] > 0
        assert loans.frame[name][loans.special[name].notna().to_numpy()].isna().all()
    storage = MemoryStorage()
    size = 2 * ROWS if expand else None
    kept = process_dataset(loans, storage, source="kept", schema=schema, seed=seed, size=size)
    old = process_dataset(
        _without_codes(loans), storage, source="old", schema=schema, seed=seed, size=size
    )
    catalogue = DatasetCatalogue(storage)
    assert old.files.keys() == {"train.parquet", "test.parquet", "feature_spec.json", "schema.json"}
    if coded:
        assert {special_file("train"), special_file("test")} <= kept.files.keys()
    # The model's data is what it was: the same splits and preprocessing, byte for byte.
    for name in ("train.parquet", "test.parquet", "feature_spec.json"):
        assert kept.files[name] == old.files[name]
    assert kept.feature_spec == old.feature_spec
    held = {s: catalogue.load_special(kept.id, s) for s in ("train", "test")}
    _codes_follow_their_rows(catalogue, kept, loans, held, expand=expand)
    assert catalogue.load_special(old.id, "train") is None

    train = catalogue.load_split(kept.id, "train")
    analysis = compute(catalogue, kept.id, limits=LIMITS)
    as_before = compute(catalogue, old.id, limits=LIMITS)
    assert as_before.attributes == fit_schema(schema, train, limits=LIMITS).attributes
    for now, before in zip(analysis.attributes, as_before.attributes, strict=True):
        if now.name not in coded:
            assert now == before
            continue
        stored = held["train"]
        assert stored is not None
        # Each code's bin holds the loans that held it (and, as before, a value equal to
        # it in the split: expansion's noise can make one); before, such loans were missing.
        held_values = pd.Series(with_codes(train[now.name], stored[now.name]))
        split_values = pd.Series(with_codes(train[now.name], None))
        special = [
            (a, b) for a, b in zip(now.bins, before.bins, strict=True) if a.kind == "special"
        ]
        for bin_now, bin_before in special:
            assert bin_now.count == int((held_values == bin_now.code).sum())
            assert bin_before.count == int((split_values == bin_now.code).sum())
        gained = sum(a.count - b.count for a, b in special)
        assert before.bins[-1].count - now.bins[-1].count == gained


def _codes_follow_their_rows(
    catalogue: DatasetCatalogue,
    dataset: DatasetManifest,
    loans: Validated,
    held: dict[str, pd.DataFrame | None],
    *,
    expand: bool,
) -> None:
    """Every stored code sits on a loan whose split value is missing; together the splits
    hold each code as often as the input did (twice, expanded to twice its rows)."""
    coded = list(loans.special.columns)
    if not coded:
        assert all(h is None for h in held.values())
        return
    splits = {s: catalogue.load_split(dataset.id, s) for s in ("train", "test")}
    for name in coded:
        stored = []
        for split, frame in splits.items():
            codes = held[split]
            assert codes is not None and len(codes) == len(frame)
            assert frame[name][codes[name].notna().to_numpy()].isna().all()
            stored.append(codes[name])
        counted = pd.concat(stored).value_counts().to_dict()
        expected = loans.special[name].value_counts() * (2 if expand else 1)
        assert counted == expected.to_dict()


def _small_schema() -> LoanSchema:
    return LoanSchema.model_validate(
        {
            "name": "codes",
            "columns": [
                {"name": "months", "type": "integer", "special": [{"values": [98, -1]}]},
                {
                    "name": "job",
                    "type": "categorical",
                    "categories": ["A", "B"],
                    "special": [{"values": ["n/a"]}],
                },
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )


def test_codes_put_back_are_the_values_the_loans_held() -> None:
    """with_codes: numbers as floats, categories as text; a loan without a code keeps its
    value; without codes, the values as they are."""
    schema = _small_schema()
    raw = pd.DataFrame(
        {"months": [3, 98, None, "-1"], "job": ["a", " N/A", None, "b"], "bad": [0, 1, 0, 1]}
    )
    loans = validate_frame(raw, schema=schema)
    assert loans.report.special == {"months": 2, "job": 1}
    months = with_codes(loans.frame["months"], loans.special["months"])
    assert months.dtype == np.float64
    assert months[[0, 1, 3]].tolist() == [3.0, 98.0, -1.0] and np.isnan(months[2])
    assert with_codes(loans.frame["job"], loans.special["job"]).tolist() == ["A", "N/A", None, "B"]
    assert with_codes(loans.frame["job"], None).tolist() == ["A", None, None, "B"]
    scored = validate_frame(raw.drop(columns=["bad"]), schema=schema, mode="score")
    assert scored.special.columns.empty  # scoring reads codes from what was sent


def test_a_file_read_in_chunks_keeps_each_code_on_its_loan_and_drops_it_with_a_bad_row() -> None:
    schema = _small_schema()
    first = pd.DataFrame({"months": [98, "x", 5], "job": ["n/a", "a", "b"], "bad": [1, 0, 0]})
    second = pd.DataFrame({"months": [-1, 7], "job": ["a", "N/A"], "bad": [0, 1]})
    loans = validate_chunks([(0, first), (3, second)], schema=schema, on_error="drop")
    assert loans.row_numbers.tolist() == [1, 3, 4, 5]  # row 2 is not a number: dropped
    months = with_codes(loans.frame["months"], loans.special["months"])
    assert months.tolist() == [98.0, 5.0, -1.0, 7.0]
    assert with_codes(loans.frame["job"], loans.special["job"]).tolist() == ["N/A", "B", "A", "N/A"]
    assert loans.special["months"].cat.categories.tolist() == [-1.0, 98.0]


def test_a_changed_codes_file_is_refused_naming_it() -> None:
    schema = _small_schema()
    raw = pd.DataFrame(
        {
            "months": [98, 3, -1, 12, 7, 98, 4, 30] * 4,
            "job": ["a", "n/a", "b", "a", "b", "a", "n/a", "b"] * 4,
            "bad": [1, 0, 0, 1, 0, 1, 0, 0] * 4,
        }
    )
    storage = MemoryStorage()
    dataset = process_dataset(
        validate_frame(raw, schema=schema), storage, source="codes", schema=schema
    )
    catalogue = DatasetCatalogue(storage)
    path = catalogue.path(dataset.id, special_file("train"))
    data = bytearray(storage.read_bytes(path))
    data[len(data) // 2] ^= 0xFF
    storage.write_bytes(path, bytes(data))
    with pytest.raises(HashMismatch) as refused:
        catalogue.load_special(dataset.id, "train")
    assert refused.value.details["file"] == special_file("train")
    held = catalogue.load_special(dataset.id, "test")  # the other file is intact
    assert held is not None and list(held.columns) == ["months", "job"]
