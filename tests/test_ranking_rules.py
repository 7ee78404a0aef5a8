import pytest

from annotation.ranking_rules import ranking_errors

SHOWN = [11, 12, 13, 14]


@pytest.mark.parametrize(
    "ranks",
    [
        {11: 1, 12: 2, 13: 3, 14: 4},
        {11: 1, 12: 2, 13: 2, 14: 3},
        {11: 1, 12: 1, 13: 1, 14: 1},
        {11: 2, 12: 1, 13: 2, 14: 1},
    ],
)
def test_ranking_errors_accepts_dense_rankings_with_ties(ranks):
    assert ranking_errors(ranks, SHOWN) == []


def test_ranking_errors_rejects_gap_in_ranks():
    (error,) = ranking_errors({11: 1, 12: 3, 13: 3, 14: 4}, SHOWN)
    assert "skips rank 2" in error


def test_ranking_errors_rejects_missing_and_foreign_responses():
    errors = ranking_errors({11: 1, 12: 2, 13: 3, 99: 4}, SHOWN)
    assert "Response 99 is not one of the responses shown" in errors[0]
    assert "Response 14 has no rank" in errors[1]


def test_ranking_errors_rejects_out_of_range_and_non_integer_ranks():
    errors = ranking_errors({11: 0, 12: 5, 13: "2", 14: True}, SHOWN)
    assert len(errors) == 4
    assert "outside 1..4" in errors[0] and "outside 1..4" in errors[1]
    assert "not a whole number" in errors[2] and "not a whole number" in errors[3]


def test_ranking_errors_rejects_ties_when_project_forbids_them():
    (error,) = ranking_errors({11: 1, 12: 2, 13: 2, 14: 3}, SHOWN, allow_ties=False)
    assert "does not allow ties" in error
