"""The development sample's score (whole points) over the system-stability bins, as a
version's profile records them (``profile.json``, field ``points``).

The bins are optbinning's for its system stability report (``ScorecardMonitoring`` with its
defaults, ``optbinning/scorecard/monitoring.py``, ``_fit_system``; ``PreBinning`` in
``optbinning/binning/prebinning.py``): a CART tree (scikit-learn's
``DecisionTreeClassifier``) of the default flag on the score, with at most
:data:`MAX_BINS` leaves of at least :data:`MIN_BIN_SIZE` of the rows each; its thresholds,
ascending, are the inner edges. A score falls in bin ``i`` when ``edges[i-1] < score <=
edges[i]`` (``numpy.digitize(..., right=True)``, as optbinning counts), the first bin
unbounded below and the last above. The counts and defaults per bin are the development
sample's (the version's profile rows: its training split, or a seeded sample of it).
"""

from __future__ import annotations

import itertools

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: optbinning's ``ScorecardMonitoring`` defaults: ``psi_n_bins=20``, ``psi_min_bin_size=0.05``.
MAX_BINS = 20
MIN_BIN_SIZE = 0.05


class ScoreBins(BaseModel):
    """The development sample's scores over the system-stability bins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field("cart", description="How the edges were found (optbinning's 'cart').")
    edges: list[float] = Field(description="Inner edges, ascending; bins are (a, b].")
    counts: list[int] = Field(description="Development rows per bin (len(edges) + 1).")
    events: list[int] = Field(description="Development defaults per bin.")

    @property
    def labels(self) -> list[str]:
        """Each bin as a reader sees it: ``(-inf, 560.5]``, ``(560.5, 575.5]`` ...
        ``(624.5, inf)``."""
        bounds = ["-inf", *(f"{e:g}" for e in self.edges), "inf"]
        labels = [f"({a}, {b}]" for a, b in itertools.pairwise(bounds)]
        labels[-1] = labels[-1][:-1] + ")"
        return labels

    def count(self, scores: np.ndarray) -> np.ndarray:
        """How many of ``scores`` fall in each bin (int64, ``len(edges) + 1``)."""
        index = np.digitize(np.asarray(scores, dtype=np.float64), self.edges, right=True)
        counts: np.ndarray = np.bincount(index, minlength=len(self.edges) + 1)
        return counts


def score_splits(scores: np.ndarray, labels: np.ndarray) -> list[float]:
    """optbinning's ``PreBinning(method="cart", n_bins=20, min_bin_size=0.05)`` splits of
    ``scores`` against the 0/1 ``labels``: the tree's thresholds, ascending (none when the
    labels are all one class or the scores all one value)."""
    from sklearn.tree import DecisionTreeClassifier

    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    tree = DecisionTreeClassifier(min_samples_leaf=MIN_BIN_SIZE, max_leaf_nodes=MAX_BINS)
    tree.fit(x, np.asarray(labels))
    thresholds = np.unique(tree.tree_.threshold)
    undefined = -2.0  # sklearn.tree._tree.TREE_UNDEFINED
    return [float(t) for t in thresholds[thresholds != undefined]]


def score_bins(scores: np.ndarray, labels: np.ndarray) -> ScoreBins:
    """The bins (:func:`score_splits`) of a development sample's scores (whole points) and
    default flags (0/1), with its counts and defaults in each."""
    values = np.asarray(scores, dtype=np.float64)
    flags = np.asarray(labels, dtype=np.int64)
    edges = score_splits(values, flags) if len(values) else []
    index = np.digitize(values, edges, right=True)
    size = len(edges) + 1
    counts = np.bincount(index, minlength=size)
    events = np.bincount(index, weights=(flags == 1).astype(np.float64), minlength=size)
    return ScoreBins(edges=edges, counts=[int(c) for c in counts], events=[int(e) for e in events])
