"""The binning engine: optimal bins, WoE and IV of a schema's feature attributes.

It wraps optbinning (imported only when a fit runs) and returns typed models
(:mod:`loanrisk.binning.models`, whose docstring states the conventions: bin order, the WoE
sign, IV, Gini, the IV bands and quality flags). :func:`fit_schema` bins every feature of a
schema on a frame; :func:`bin_indices` maps raw values to bins for scoring.
"""

from loanrisk.binning.apply import bin_indices, with_codes, woe_of
from loanrisk.binning.fit import fit_attribute, fit_schema, trend_of
from loanrisk.binning.models import (
    IV_BANDS,
    SMALL_BIN_SHARE,
    AttributeBinning,
    Bin,
    BinningLimits,
    Quality,
    SchemaBinning,
    iv_band,
)

__all__ = [
    "IV_BANDS",
    "SMALL_BIN_SHARE",
    "AttributeBinning",
    "Bin",
    "BinningLimits",
    "Quality",
    "SchemaBinning",
    "bin_indices",
    "fit_attribute",
    "fit_schema",
    "iv_band",
    "trend_of",
    "with_codes",
    "woe_of",
]
