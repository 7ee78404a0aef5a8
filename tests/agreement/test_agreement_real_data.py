"""Checks on real multi-rater data from ../shared/data (see its README); skipped where the data is absent."""

import json
import warnings
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from annotation.agreement import (
    RankTable,
    alpha_ci,
    alpha_long,
    consensus_agreement,
    consensus_ranking,
    kendall_w,
    krippendorff_alpha,
    labeler_scores,
    model_leaderboard,
    outlier_labelers,
    pairwise_agreement,
    pairwise_agreement_by_prompt,
)

WMT = Path(__file__).resolve().parents[3] / "shared" / "data" / "wmt23_ende_3raters.jsonl"


@pytest.fixture(scope="module")
def wmt():
    if not WMT.exists():
        pytest.skip(f"{WMT} not available")
    lines = [json.loads(line) for line in WMT.read_text().splitlines()]
    rows = [
        {"prompt": x["item_id"], "labeler": x["annotator_id"], "response": f"{x['item_id']}/{system}", "rank": rank}
        | {"model": system, "penalty": x["scores"][system]}
        for x in lines
        for system, rank in x["ranks"].items()
    ]
    return RankTable.from_rows(rows), np.array([row["penalty"] for row in rows], dtype=float)


def test_wmt23_interval_alpha_on_mqm_penalties_is_the_published_0_53(wmt):
    # ../shared/data/README.md: "Its Krippendorff's alpha (interval, on the penalties) is about 0.53."
    table, penalty = wmt
    data = np.full((table.n_labelers, table.n_responses), np.nan)
    data[table.labeler, table.response] = penalty

    ours = alpha_long(table.response, penalty, "interval")

    assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="interval"))
    assert round(ours, 2) == 0.53


def test_wmt23_every_metric_runs_on_averaged_ranks_with_many_ties(wmt):
    table, _ = wmt

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alpha = krippendorff_alpha(table)
        low, high = alpha_ci(table, n_boot=200)
        w = kendall_w(table)
        board = model_leaderboard(table, n_boot=20)
        scores = labeler_scores(table)
        outlier_labelers(consensus_agreement(table))
        consensus_ranking(table)
        pairwise_agreement_by_prompt(table)

    assert 0 < low < alpha < high < 1
    assert np.isfinite(w).all() and ((w >= 0) & (w <= 1)).all()
    assert 0.5 < pairwise_agreement(table) < 1
    assert len(board) == 10 and len(scores) == table.n_labelers
