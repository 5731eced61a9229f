"""ssald_index.active.classify: calibrated classifiers on clustered vectors."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.active.classify import fit_and_score
from tests.ssald_index.active.test_strategies import clustered


def test_classifier_learns_and_refuses_one_class():
    x, truth = clustered()
    rows = np.r_[np.flatnonzero(truth)[:8], np.flatnonzero(~truth)[:60]]
    for kind in ("logistic", "forest"):
        result = fit_and_score(x, rows, truth[rows].astype(int), kind=kind, cv=True)
        assert result.calibrated and result.n_positive == 8
        unlabelled = np.setdiff1d(np.arange(len(x)), rows)
        best = unlabelled[np.argsort(-result.scores[unlabelled])[:7]]
        assert truth[best].all(), kind  # the 7 remaining rare objects rank first
        assert result.metrics["cv_roc_auc"] > 0.95
    with pytest.raises(ValueError, match="both positive and negative"):
        fit_and_score(x, rows[:3], np.ones(3, int))
    with pytest.raises(ValueError, match="classifier must be one of"):
        fit_and_score(x, rows, truth[rows].astype(int), kind="svm")
