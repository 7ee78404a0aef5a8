"""The chunked pipeline: ranking and prompt filters, unsafe file, metadata counts and agreement, chunk independence."""

import numpy as np
import orjson
import pytest

from annotation import agreement as ag
from annotation.exports import PromptData, RankingData, chunk_table
from tests.annotation.exports.conftest import prime_prompt, run_export


def random_prompts(n: int = 30, seed: int = 0) -> list[PromptData]:
    """Prompts with 2-5 responses ranked by 1-4 of 6 labelers, with ties and a few flags."""
    rng = np.random.default_rng(seed)
    prompts, rid, ranking_id = [], 0, 0
    for pid in range(1, n + 1):
        k = int(rng.integers(2, 6))
        responses = {rid + i: f"response {rid + i} to prompt {pid}" for i in range(k)}
        rid += k
        quality = rng.normal(size=k)
        rankings = []
        for labeler in rng.permutation(6)[: int(rng.integers(1, 5))]:
            score = np.round(quality + rng.normal(size=k), 0)
            dense = np.unique(-score, return_inverse=True)[1] + 1
            ranking_id += 1
            flags = ["unsafe"] if rng.random() < 0.1 else (["cant_judge"] if rng.random() < 0.1 else [])
            ranks = {r: int(d) for r, d in zip(responses, dense, strict=True)}
            rankings.append(RankingData(ranking_id, int(labeler), ranks, flags))
        prompts.append(PromptData(pid, f"prompt {pid} " + "word " * pid, None, f"cat{pid % 3}", responses, rankings))
    return prompts


def rows(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_any_flag_excludes_a_ranking_by_default_and_none_keeps_them(tmp_path):
    prompts = random_prompts()
    flagged = sum(1 for p in prompts for r in p.rankings if r.flags)

    default = run_export(tmp_path / "a", prompts)
    keep_all = run_export(tmp_path / "b", prompts, exclude_flags=())
    only_unsafe = run_export(tmp_path / "c", prompts, exclude_flags=("unsafe",))

    assert default.meta["counts"]["rankings_flag_excluded"] == flagged > 0
    assert keep_all.meta["counts"]["rankings_flag_excluded"] == 0
    excluded_ids = {r.id for p in prompts for r in p.rankings if r.flags}
    assert not excluded_ids & {row["ranking_id"] for row in rows(default.out / "train.jsonl")}
    unsafe_ids = {r.id for p in prompts for r in p.rankings if "unsafe" in r.flags}
    assert only_unsafe.meta["counts"]["rankings_flag_excluded"] == len(unsafe_ids)


def test_unsafe_rankings_go_to_their_own_file(tmp_path):
    prompts = random_prompts()
    unsafe_ids = {r.id for p in prompts for r in p.rankings if "unsafe" in r.flags}

    result = run_export(tmp_path, prompts, unsafe_path=tmp_path / "unsafe.jsonl")

    unsafe_rows = rows(tmp_path / "unsafe.jsonl")
    assert {row["ranking_id"] for row in unsafe_rows} == unsafe_ids
    assert not unsafe_ids & {row["ranking_id"] for row in rows(result.out / "train.jsonl")}
    assert result.meta["counts"]["unsafe_rankings"] == len(unsafe_ids)
    assert result.meta["counts"]["unsafe_pairs"] == len(unsafe_rows)
    assert str(tmp_path / "unsafe.jsonl") in result.meta["files"]


def test_min_labelers_leaves_out_prompts_with_fewer_labelers(tmp_path):
    prompts = random_prompts()
    result = run_export(tmp_path, prompts, min_labelers=3, exclude_flags=())

    few = {p.id for p in prompts if len({r.labeler for r in p.rankings}) < 3}
    exported = {row["prompt_id"] for row in rows(result.out / "train.jsonl")}
    assert few and not few & exported
    assert result.meta["counts"]["prompts_below_min_labelers"] == len(few)


def test_min_agreement_uses_per_prompt_pairwise_agreement_with_ties_dropped(tmp_path):
    prompts = random_prompts(40)
    table = chunk_table([(p, p.rankings) for p in prompts])
    per_prompt = ag.pairwise_agreement_by_prompt(table, "drop")
    expected = {int(pid) for pid, value in zip(table.prompt_ids, per_prompt, strict=True) if value >= 0.7}

    result = run_export(tmp_path, prompts, min_agreement=0.7, exclude_flags=())

    assert {row["prompt_id"] for row in rows(result.out / "train.jsonl")} == expected
    assert result.meta["counts"]["prompts_below_min_agreement"] == len(prompts) - len(expected)


def test_metadata_agreement_equals_the_agreement_package_on_the_exported_rankings(tmp_path):
    prompts = random_prompts(50)
    kept = [(p, [r for r in p.rankings if not r.flags]) for p in prompts]
    table = chunk_table([item for item in kept if item[1]])

    result = run_export(tmp_path, prompts, chunk=7)

    agreement = result.meta["agreement"]
    assert agreement["pairwise_agreement_ties_dropped"] == pytest.approx(ag.pairwise_agreement(table, "drop"), abs=1e-6)
    assert agreement["alpha_ordinal"] == pytest.approx(ag.krippendorff_alpha(table, "ordinal"), abs=1e-6)
    assert agreement["alpha_tie_coding"] == "average"  # issue #12: the metadata says how ties were coded
    assert [row["id"] for row in result.meta["labelers"]] == sorted(set(table.labeler_ids.tolist()))


def test_metadata_counts_for_the_golden_example(tmp_path):
    result = run_export(tmp_path, [prime_prompt()])
    counts = result.meta["counts"]

    assert (counts["prompts"], counts["rankings"], counts["pairs"], counts["ties_dropped"]) == (1, 3, 9, 0)
    assert counts["splits"] == {"train": {"prompts": 1, "rankings": 3, "pairs": 9},
                                "test": {"prompts": 0, "rankings": 0, "pairs": 0}}  # fmt: skip
    assert result.meta["schema_version"] == 1 and result.meta["strategy"] == "all"
    assert len(result.meta["content_hash"]) == 64 and set(result.meta["files"]) == {"train.jsonl", "test.jsonl"}


@pytest.mark.parametrize("strategy", ["all", "majority", "consensus"])
def test_chunking_does_not_change_the_output(tmp_path, strategy):
    prompts = random_prompts(25)

    whole = run_export(tmp_path / "a", prompts, strategy=strategy, test_ratio=0.3)
    chunked = run_export(tmp_path / "b", prompts, strategy=strategy, test_ratio=0.3, chunk=4)

    assert whole.files == chunked.files and whole.meta["content_hash"] == chunked.meta["content_hash"]
    assert whole.meta["counts"] == chunked.meta["counts"]


def test_every_prompt_lands_in_exactly_one_split(tmp_path):
    prompts = random_prompts(60)
    result = run_export(tmp_path, prompts, test_ratio=0.3, exclude_flags=())

    train = {row["prompt_id"] for row in rows(result.out / "train.jsonl")}
    test = {row["prompt_id"] for row in rows(result.out / "test.jsonl")}
    assert train and test and not train & test
    assert result.meta["counts"]["splits"]["test"]["prompts"] == len(test)
