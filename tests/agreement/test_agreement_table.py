import numpy as np
import pytest

from annotation.agreement import RankTable


def test_from_rows_factorizes_ids_into_codes_and_keeps_the_maps():
    rows = [
        {"prompt": "p2", "labeler": "bob", "response": 20, "rank": 1, "position": 1, "model": "gpt"},
        {"prompt": "p2", "labeler": "bob", "response": 21, "rank": 2, "position": 0, "model": None},
        {"prompt": "p1", "labeler": "ann", "response": 10, "rank": 1, "position": 0, "model": "llama"},
        {"prompt": "p1", "labeler": "ann", "response": 11, "rank": 1, "position": 1, "model": "gpt"},
    ]
    table = RankTable.from_rows(rows)

    assert table.prompt.tolist() == [1, 1, 0, 0]
    assert table.labeler.tolist() == [1, 1, 0, 0]
    assert table.response.tolist() == [2, 3, 0, 1]
    assert table.prompt_ids[table.prompt].tolist() == ["p2", "p2", "p1", "p1"]
    assert table.response_ids[table.response].tolist() == [20, 21, 10, 11]
    assert table.model.tolist() == [0, -1, 1, 0]
    assert table.model_ids.tolist() == ["gpt", "llama"]
    assert table.position.tolist() == [1, 0, 0, 1]
    assert table.rank.dtype == np.float64
    assert (table.n_prompts, table.n_labelers, table.n_responses, table.n_models) == (2, 2, 4, 2)


def test_from_rows_accepts_tuples_without_position_or_model():
    table = RankTable.from_rows([(7, "a", 70, 1), (7, "a", 71, 2.5)])

    assert table.position is None and table.model is None
    assert table.rank.tolist() == [1.0, 2.5]


def test_from_rows_rejects_a_row_without_rank():
    with pytest.raises(ValueError, match="lacks 'rank'"):
        RankTable.from_rows([{"prompt": 1, "labeler": 1, "response": 1}])


def test_rank_table_rejects_a_response_under_two_prompts():
    with pytest.raises(ValueError, match="more than one prompt"):
        RankTable(prompt=[0, 1], labeler=[0, 1], response=[5, 5], rank=[1, 1])


def test_rank_table_rejects_a_labeler_ranking_a_response_twice():
    with pytest.raises(ValueError, match="more than once"):
        RankTable(prompt=[0, 0], labeler=[3, 3], response=[5, 5], rank=[1, 2])


@pytest.mark.parametrize("rank", [[0.0, 1.0], [np.nan, 1.0], [np.inf, 1.0]])
def test_rank_table_rejects_ranks_that_are_not_finite_and_at_least_one(rank):
    with pytest.raises(ValueError, match="ranks must be finite"):
        RankTable(prompt=[0, 0], labeler=[0, 0], response=[0, 1], rank=rank)


def test_rank_table_rejects_columns_of_different_lengths():
    with pytest.raises(ValueError, match="'rank' has 1 rows, expected 2"):
        RankTable(prompt=[0, 0], labeler=[0, 0], response=[0, 1], rank=[1])


def test_rank_table_rejects_non_integer_codes():
    with pytest.raises(ValueError, match="integer codes"):
        RankTable(prompt=[0.5], labeler=[0], response=[0], rank=[1])


def test_take_keeps_codes_and_id_maps():
    table = RankTable.from_rows([(1, "a", 10, 1), (1, "a", 11, 2), (2, "a", 20, 1)])
    sub = table.take(table.prompt_ids[table.prompt] == 1)

    assert sub.n_rows == 2
    assert sub.n_prompts == 2  # the id map still knows both prompts
    assert sub.response_ids[sub.response].tolist() == [10, 11]


def test_empty_table_is_valid():
    table = RankTable(prompt=[], labeler=[], response=[], rank=[])

    assert table.n_rows == table.n_prompts == 0


def test_from_rows_keeps_mixed_id_types_apart():
    table = RankTable.from_rows([(1, "a", 1, 1), (1, "a", "1", 2)])

    assert table.n_responses == 2
    assert table.response_ids[table.response].tolist() == [1, "1"]
