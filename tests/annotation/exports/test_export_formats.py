"""Parquet, Hugging Face datasets, raw rankings, hashing and the streamed variant agree with the JSONL rows."""

import hashlib

import orjson
import pyarrow.parquet as pq
import pytest

from annotation.exports import ExportOptions, HashingFile, PromptData, RankingData, export_stream
from tests.annotation.exports.conftest import prime_prompt, run_export
from tests.annotation.exports.test_export_pipeline import random_prompts


def jsonl_rows(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("strategy", ["all", "majority", "consensus"])
def test_parquet_rows_equal_jsonl_rows(tmp_path, strategy):
    prompts = random_prompts(20)
    opts = {"strategy": strategy, "margin": "rank-diff", "ties": "keep", "test_ratio": 0.3}

    jsonl = run_export(tmp_path / "j", prompts, **opts)
    parquet = run_export(tmp_path / "p", prompts, fmt="parquet", **opts)

    for split in ("train", "test"):
        table = pq.read_table(parquet.out / f"{split}.parquet")
        assert table.column_names == jsonl.meta["columns"]
        assert table.to_pylist() == jsonl_rows(jsonl.out / f"{split}.jsonl")


def test_parquet_keeps_chat_prompts_as_lists_of_messages(tmp_path):
    ranking = RankingData(1, 1, {1: 1, 2: 2})
    chat = PromptData(1, "Hi", [{"role": "user", "content": "Hi"}], "", {1: "a", 2: "b"}, [ranking])

    result = run_export(tmp_path, [chat], fmt="parquet", columns="trl")

    assert pq.read_table(result.out / "train.parquet").to_pylist() == [
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "a"}],
         "rejected": [{"role": "assistant", "content": "b"}]}
    ]  # fmt: skip


def test_hf_format_saves_a_datasetdict_with_train_and_test(tmp_path):
    from datasets import load_from_disk

    result = run_export(tmp_path, random_prompts(20), fmt="hf", test_ratio=0.3)

    dataset = load_from_disk(str(result.out))
    assert set(dataset) == {"train", "test"}
    counts = result.meta["counts"]["splits"]
    assert (dataset["train"].num_rows, dataset["test"].num_rows) == (counts["train"]["pairs"], counts["test"]["pairs"])
    assert dataset["train"].column_names[:3] == ["prompt", "chosen", "rejected"]
    assert all(name.endswith(".arrow") for name in result.meta["files"])
    assert not list(result.out.glob(".export-*"))  # the intermediate Parquet files are gone


def test_hf_format_with_an_empty_test_split_keeps_the_schema(tmp_path):
    from datasets import load_from_disk

    run_export(tmp_path, [prime_prompt()], fmt="hf", test_ratio=0.0)

    dataset = load_from_disk(str(tmp_path / "out"))
    assert dataset["test"].num_rows == 0 and dataset["test"].column_names == dataset["train"].column_names


def test_raw_export_writes_one_line_per_ranking_with_every_rank_and_model(tmp_path):
    prompt = prime_prompt()
    prompt.models = {11: "model-a", 12: "model-b", 13: "model-c"}
    prompt.rankings[0].raw = {"labeler": "ann", "version": 2, "shown_order": [13, 11, 12], "rationale": "odd"}

    result = run_export(tmp_path, [prompt], fmt="raw")

    lines = jsonl_rows(result.out / "rankings.jsonl")
    assert len(lines) == 3 and set(result.files) == {"rankings.jsonl"}
    assert lines[0] == {
        "ranking_id": 101, "prompt_id": 1, "prompt": "Name a prime number.", "category": "math", "split": "train",
        "labeler": "ann", "version": 2, "rationale": "odd", "flags": [], "shown_order": [13, 11, 12],
        "responses": [{"id": 11, "text": "2", "model": "model-a", "rank": 1},
                      {"id": 12, "text": "4", "model": "model-b", "rank": 2},
                      {"id": 13, "text": "9", "model": "model-c", "rank": 3}],
    }  # fmt: skip


def test_file_hashes_are_the_sha256_of_the_written_bytes(tmp_path):
    result = run_export(tmp_path, random_prompts(10), test_ratio=0.5)

    for name, sha in result.files.items():
        assert sha == hashlib.sha256((result.out / name).read_bytes()).hexdigest()
    again = run_export(tmp_path / "again", random_prompts(10), test_ratio=0.5)
    assert again.meta["content_hash"] == result.meta["content_hash"]


def test_hashing_file_counts_and_hashes_what_passes_through(tmp_path):
    target = HashingFile((tmp_path / "f").open("wb"))
    target.write(b"abc")
    target.write(memoryview(b"def"))
    target.close()

    assert (target.size, target.tell()) == (6, 6)
    assert target.sha256 == hashlib.sha256(b"abcdef").hexdigest() and (tmp_path / "f").read_bytes() == b"abcdef"


@pytest.mark.parametrize("split", ["train", "test"])
def test_stream_yields_the_same_bytes_as_the_file_export(tmp_path, split):
    prompts = random_prompts(30)
    files = run_export(tmp_path, prompts, test_ratio=0.3, chunk=5)

    def load_chunks(ids):
        by_id = {p.id: p for p in prompts}
        ordered = [by_id[int(i)] for i in ids]
        return [ordered[i : i + 5] for i in range(0, len(ordered), 5)]

    parts = list(export_stream(options=ExportOptions(test_ratio=0.3), fmt="jsonl", split_name=split,
                               prompt_texts=lambda: [(p.id, p.text) for p in prompts], load_chunks=load_chunks,
                               conversational=False))  # fmt: skip

    assert len(parts) > 1  # yielded chunk by chunk, not all at the end
    assert b"".join(parts) == (files.out / f"{split}.jsonl").read_bytes()
