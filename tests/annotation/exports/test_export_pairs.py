"""Pairwise expansion and the three strategies, against golden JSONL bytes for a 3-response ranking."""

from pathlib import Path

import numpy as np
import orjson
import pytest

from annotation.exports import (
    Batch,
    ExportOptions,
    Layout,
    Long,
    PromptData,
    RankingData,
    all_pairs,
    pairs_majority,
    ranking_pairs,
)
from tests.annotation.exports.conftest import prime_prompt, run_export

GOLDEN = Path(__file__).parent / "golden"  # the exact bytes, written by hand from docs/export.md's example


@pytest.mark.parametrize("strategy", ["all", "majority", "consensus"])
def test_golden_jsonl_bytes_for_a_three_response_ranking(tmp_path, strategy):
    margin = "none" if strategy == "all" else "rank-diff"
    result = run_export(tmp_path, [prime_prompt()], strategy=strategy, margin=margin)

    assert (result.out / "train.jsonl").read_bytes() == (GOLDEN / f"{strategy}.jsonl").read_bytes()
    assert (result.out / "test.jsonl").read_bytes() == b""


def test_trl_columns_keep_only_prompt_chosen_rejected_and_margin(tmp_path):
    result = run_export(tmp_path, [prime_prompt()], strategy="consensus", margin="rank-diff", columns="trl")

    first = (result.out / "train.jsonl").read_bytes().splitlines()[0]
    assert first == b'{"prompt":"Name a prime number.","chosen":"2","rejected":"4","margin":1.0}'


def test_ranking_pairs_orders_by_rank_and_drops_or_keeps_ties():
    ranks = {5: 2, 3: 1, 4: 2, 9: 3}  # 3 best, 4 and 5 tied, 9 last

    assert ranking_pairs(ranks) == [(3, 4, 1.0, False), (3, 5, 1.0, False), (3, 9, 2.0, False),
                                    (4, 9, 1.0, False), (5, 9, 1.0, False)]  # fmt: skip
    assert (4, 5, 0.0, True) in ranking_pairs(ranks, keep_ties=True)
    assert len(ranking_pairs(ranks, keep_ties=True)) == 6


def test_tied_ranking_counts_dropped_ties_or_writes_tie_rows(tmp_path):
    prompt = PromptData(1, "Tie?", None, "", {1: "a", 2: "b", 3: "c"}, [RankingData(7, 1, {1: 1, 2: 1, 3: 2})])

    dropped = run_export(tmp_path / "drop", [prompt], margin="rank-diff")
    kept = run_export(tmp_path / "keep", [prompt], ties="keep", margin="rank-diff", columns="trl")

    assert dropped.meta["counts"]["pairs"] == 2 and dropped.meta["counts"]["ties_dropped"] == 1
    lines = (kept.out / "train.jsonl").read_bytes().splitlines()
    assert lines[0] == b'{"prompt":"Tie?","chosen":"a","rejected":"b","margin":0.0,"tie":true}'
    assert lines[1] == b'{"prompt":"Tie?","chosen":"a","rejected":"c","margin":1.0,"tie":false}'
    assert kept.meta["counts"]["tie_rows"] == 1 and kept.meta["counts"]["ties_dropped"] == 0


def test_majority_drops_even_splits_and_lets_tying_labelers_abstain():
    prompt = PromptData(1, "p", None, "", {1: "a", 2: "b"}, [])
    rankings = [RankingData(1, 1, {1: 1, 2: 2}), RankingData(2, 2, {1: 2, 2: 1}), RankingData(3, 3, {1: 1, 2: 1})]
    batch = Batch()

    counts = pairs_majority(batch, prompt, rankings, keep_ties=False)
    assert (counts.pairs, counts.even_splits_dropped, len(batch)) == (0, 1, 0)

    counts = pairs_majority(batch, prompt, rankings[:1] + rankings[2:], keep_ties=False)
    assert (counts.pairs, batch.chosen, batch.votes_for, batch.votes_against) == (1, [1], [1], [0])


def test_chat_prompts_use_trl_conversational_form_and_plain_prompts_become_a_user_turn(tmp_path):
    chat = PromptData(1, "user: Hi", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                      "chat", {1: "Hello!", 2: "Go away."}, [RankingData(5, 1, {1: 1, 2: 2})])  # fmt: skip
    plain = PromptData(2, "2+2?", None, "qa", {3: "4", 4: "5"}, [RankingData(6, 1, {3: 1, 4: 2})])

    result = run_export(tmp_path, [chat, plain], columns="trl")

    rows = [orjson.loads(line) for line in (result.out / "train.jsonl").read_bytes().splitlines()]
    assert rows[0] == {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    assert rows[1]["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert result.meta["conversational"] is True


def _all_batch(prompt: PromptData, keep_ties: bool) -> Batch:
    long = Long.build([(prompt, prompt.rankings)])
    better, worse, tie = all_pairs(long, keep_ties)
    return Batch(prompts=[prompt], prompt=[0] * len(better), chosen=long.response[better].tolist(),
                 rejected=long.response[worse].tolist(), margin=(long.rank[worse] - long.rank[better]).tolist(),
                 tie=tie.tolist(), ranking=long.ranking_ids[long.ranking[better]].tolist())  # fmt: skip


@pytest.mark.parametrize("keep_ties", [False, True])
def test_vectorised_all_pairs_equal_ranking_pairs_for_each_ranking(keep_ties):
    rng = np.random.default_rng(0)
    rankings = []
    for n in range(200):
        k = int(rng.integers(2, 8))
        ids = rng.choice(1000, size=k, replace=False).tolist()
        ranks = np.unique(rng.integers(0, k, size=k), return_inverse=True)[1] + 1  # dense, with ties
        rankings.append(RankingData(n, n % 7, dict(zip(ids, ranks.tolist(), strict=True))))
    prompt = PromptData(1, "p", None, "", {}, rankings)

    batch = _all_batch(prompt, keep_ties)

    expected = [(r.id, *row) for r in rankings for row in ranking_pairs(r.ranks, keep_ties)]
    assert list(zip(batch.ranking, batch.chosen, batch.rejected, batch.margin, batch.tie, strict=True)) == expected


@pytest.mark.parametrize("strategy", ["all", "majority"])
@pytest.mark.parametrize("conversational", [False, True])
def test_fast_jsonl_lines_equal_orjson_dumps_of_each_row(strategy, conversational):
    prompt = prime_prompt()
    prompt.responses[12] = 'quote " backslash \\ newline \n unicode ü 😀'
    prompt.rankings[0].ranks[13] = 2  # a tie
    options = ExportOptions(strategy=strategy, margin="rank-diff", ties="keep")
    layout = Layout(options, conversational)
    if strategy == "all":
        batch = _all_batch(prompt, keep_ties=True)
    else:
        batch = Batch()
        pairs_majority(batch, prompt, prompt.rankings, keep_ties=True)

    lines = layout.jsonl(batch).splitlines(keepends=True)

    assert len(lines) == len(batch) > 0
    assert lines == [orjson.dumps(layout.row_dict(batch, row)) + b"\n" for row in range(len(batch))]


README_SECTION = Path(__file__).resolve().parents[3] / "README.md"  # the worked example lives in the README


def _capital_prompt() -> PromptData:
    texts = {1: "Canberra.", 2: "Canberra, since 1913.", 3: "Sydney.", 4: "Melbourne.", 5: "I don't know."}
    return PromptData(1, "What is the capital of Australia?", None, "qa", texts, [
        RankingData(101, 1, {2: 1, 1: 2, 3: 3, 5: 3, 4: 4}),  # ann: B > A > C = E > D
        RankingData(102, 2, {1: 1, 2: 2, 5: 3, 3: 4, 4: 5}),  # bob: A > B > E > C > D
        RankingData(103, 3, {2: 1, 1: 2, 3: 3, 4: 4, 5: 5}),  # cem: B > A > C > D > E
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("all", "BA BC BE BD AC AE AD CD ED AB AE AC AD BE BC BD EC ED CD BA BC BD BE AC AD AE CD CE DE"),
        ("majority", "BA AC AD AE BC BD BE CD ED"),
        ("consensus", "BA BC BE BD AC AE AD CE CD ED"),
    ],
)
def test_readme_worked_example_matches_the_export(tmp_path, strategy, expected):
    result = run_export(tmp_path, [_capital_prompt()], strategy=strategy)

    rows = [orjson.loads(line) for line in (result.out / "train.jsonl").read_bytes().splitlines()]
    letter = dict(zip(range(1, 6), "ABCDE", strict=True))
    assert " ".join(letter[r["chosen_id"]] + letter[r["rejected_id"]] for r in rows) == expected
    counts = result.meta["counts"]
    assert (counts["ties_dropped"], counts["even_splits_dropped"]) == {"all": (1, 0), "majority": (0, 1),
                                                                       "consensus": (0, 0)}[strategy]  # fmt: skip
    if strategy == "all":  # the section quotes the first line byte for byte
        first = (result.out / "train.jsonl").read_bytes().splitlines()[0].decode()
        assert first in README_SECTION.read_text()
