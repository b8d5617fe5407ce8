"""Characteristic analysis of a dataset: each feature attribute binned on the train split
(optimal bins, counts, event rate, WoE, IV, Gini, quality flags) and an IV ranking.

Computed on first request, not at processing time (processing stays fast), and stored in the
dataset's folder as ``characteristics.json``; later requests read it back. A stored analysis
made with other limits (``LOANRISK_BINNING_MAX_ROWS``, ``LOANRISK_BINNING_MAX_BINS``), or one
that does not parse, is computed again and replaced. Above ``max_rows`` training loans, a
seeded sample of that many is read (a row group at a time: memory holds the sample, never
the whole split) and fitted on. Each declared special code treated as missing gets a bin of
its own from the codes stored beside the split; a dataset stored without them (processed
before codes were kept) bins those loans as missing. The engine and its conventions:
:mod:`loanrisk.binning`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loanrisk.binning import AttributeBinning, BinningLimits, fit_schema
from loanrisk.binning.models import IvBand
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import NotFound
from loanrisk.settings import Settings

CHARACTERISTICS = "characteristics.json"
FORMAT = "loanrisk.characteristics"
log = logging.getLogger(__name__)


class Ranked(BaseModel):
    """One line of the IV ranking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    iv: float
    band: IvBand
    bins: int = Field(description="Bins, special and missing ones included.")


class Characteristics(BaseModel):
    """A dataset's characteristic analysis (what ``characteristics.json`` holds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    dataset: str
    split: str = "train"
    schema_name: str
    created_at: str
    rows: int = Field(ge=0, description="Loans in the train split.")
    fitted_rows: int = Field(ge=0, description="Loans binned (a seeded sample above max_rows).")
    sampled: bool
    events: int = Field(ge=0, description="Defaults among the loans binned.")
    limits: BinningLimits
    ranking: list[Ranked] = Field(description="Attributes by IV, highest first.")
    attributes: list[AttributeBinning] = Field(description="In the schema's order.")


def limits_of(settings: Settings) -> BinningLimits:
    """The bounds of a characteristic analysis, from settings."""
    return BinningLimits(
        max_rows=settings.binning_max_rows, max_bins=settings.binning_max_bins, seed=settings.seed
    )


def characteristics(
    catalogue: DatasetCatalogue, dataset_id: str, *, limits: BinningLimits
) -> Characteristics:
    """The dataset's characteristic analysis: read back when stored with the same
    ``limits``, else computed on its train split and stored (``latest``: the newest dataset).
    Raises :class:`NotFound` for an
    unknown dataset, :class:`~loanrisk.errors.HashMismatch` when the split changed since
    processing."""
    manifest = catalogue.resolve(dataset_id)
    stored = _stored(catalogue, manifest.id, limits)
    if stored is not None:
        return stored
    result = compute(catalogue, manifest.id, limits=limits)
    catalogue.write_file(manifest.id, CHARACTERISTICS, result.model_dump_json().encode())
    return result


def compute(
    catalogue: DatasetCatalogue, dataset_id: str, *, limits: BinningLimits
) -> Characteristics:
    """Bin the dataset's train split (no storing)."""
    schema = catalogue.load_schema(dataset_id)
    rows = catalogue.count_rows(dataset_id, "train")
    taken: np.ndarray | None = None
    if rows > limits.max_rows:
        rng = np.random.default_rng(limits.seed)
        taken = np.sort(rng.choice(rows, size=limits.max_rows, replace=False))
        frame = catalogue.load_rows(dataset_id, "train", taken)
    else:
        frame = catalogue.load_split(dataset_id, "train")
    special = catalogue.load_special(dataset_id, "train", taken)
    binned = fit_schema(schema, frame, limits=limits, special=special)
    ranking = [
        Ranked(name=a.name, iv=a.iv, band=a.quality.iv_band, bins=len(a.bins))
        for a in binned.ranking()
    ]
    return Characteristics(
        dataset=dataset_id,
        schema_name=schema.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rows=rows,
        fitted_rows=binned.fitted_rows,
        sampled=rows > binned.fitted_rows,
        events=binned.events,
        limits=limits,
        ranking=ranking,
        attributes=binned.attributes,
    )


def _stored(
    catalogue: DatasetCatalogue, dataset_id: str, limits: BinningLimits
) -> Characteristics | None:
    path = catalogue.path(dataset_id, CHARACTERISTICS)
    try:
        data = catalogue.storage.read_bytes(path)
    except NotFound:
        return None
    try:
        stored = Characteristics.model_validate_json(data)
    except ValidationError:
        log.warning("%s does not parse: computed again", path)
        return None
    return stored if stored.limits == limits else None
