import warnings

import numpy as np
import pytest

from annotation.agreement import (
    RankTable,
    alpha_ci,
    bootstrap_ci,
    consensus_agreement,
    consensus_ranking,
    kendall_w,
    kendall_w_mean,
    kendall_w_mean_ci,
    krippendorff_alpha,
    labeler_scores,
    model_leaderboard,
    outlier_labelers,
    pairwise_agreement,
    pairwise_agreement_ci,
)

EMPTY = RankTable(prompt=[], labeler=[], response=[], rank=[], position=[], model=[])
ONE_ROW = RankTable(prompt=[0], labeler=[0], response=[0], rank=[1], position=[0], model=[0])


@pytest.mark.parametrize("table", [EMPTY, ONE_ROW], ids=["empty", "one-row"])
def test_every_metric_returns_nan_or_nothing_without_pairable_data_and_without_warnings(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scalars = [krippendorff_alpha(table), kendall_w_mean(table), pairwise_agreement(table)]
        intervals = [
            alpha_ci(table, n_boot=5),
            pairwise_agreement_ci(table, n_boot=5),
            kendall_w_mean_ci(table, n_boot=5),
            bootstrap_ci(table, krippendorff_alpha, n_boot=3),
        ]
        assert np.isnan(kendall_w(table)).all()
        assert len(consensus_ranking(table).rank) == table.n_rows
        assert outlier_labelers(consensus_agreement(table)) == []
        assert model_leaderboard(table, n_boot=5) == []
        scores = labeler_scores(table, times=np.ones(table.n_rows), flags=np.ones(table.n_rows, dtype=bool))

    assert np.isnan(scalars).all()
    assert np.isnan(intervals).all()
    assert [s["n_rankings"] for s in scores] == [1] * table.n_rows
