"""Defaults that front ends show in their help and the library applies, in a module that
imports nothing: the command line declares its options with them without loading the
library behind them (``loanrisk --help`` never pays for xgboost, pandas or numpy).

The modules that own each value re-export it under its usual name.
"""

from __future__ import annotations

#: The alias a training promotes and scoring follows unless told otherwise.
PRODUCTION = "production"
#: The reference that names a model's newest version.
LATEST = "latest"
#: Boosting rounds of a training, as the reference's 500.
DEFAULT_ROUNDS = 500
#: Share of the training rows a calibration holds out.
DEFAULT_CALIBRATION_FRACTION = 0.1
#: The AUC drop a guarded promotion tolerates beyond noise.
MAX_AUC_DROP = 0.002
#: A less discriminatory alternative may cost at most this much cross-validated AUC.
LDA_AUC_LOSS = 0.005
#: An alternative's AIR (capped at 1) is materially higher when it gains at least this much.
LDA_MIN_AIR_GAIN = 0.02
#: Rows a schema draft reads.
SCHEMA_SAMPLE_ROWS = 200_000
#: More distinct text values than this in a drafted column: not a category.
MAX_CATEGORIES = 50
