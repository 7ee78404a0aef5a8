import json

import pytest

from rlhf.training.data import (
    DataError,
    PairEncoder,
    encode_pairs,
    encode_sequences,
    format_completion,
    format_prompt,
    read_pairs,
    row_meta,
    without_ties,
)

from .conftest import pair_rows, write_jsonl

LONG_PROMPT = "\n\nHuman: " + " ".join(f"word{k % 50} filler" for k in range(200)) + " final question about tea?"


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_long_pair_is_truncated_and_counted_not_dropped(tiny_tokenizer):
    rows = pair_rows(6) + [{"prompt": LONG_PROMPT, "chosen": " Sure, tea " * 80, "rejected": " No."}]
    items, stats = encode_pairs(rows, tiny_tokenizer, max_length=48)

    assert len(items) == len(rows)
    assert stats.pairs == 7 and stats.truncated_pairs == 1
    assert stats.prompt_truncated == 1 and stats.completion_truncated == 1
    assert stats.longest_tokens > 48
    assert all(len(item["chosen_ids"]) <= 48 and len(item["rejected_ids"]) <= 48 for item in items)


def test_truncation_keeps_the_end_of_the_prompt_and_the_start_of_the_completion(tiny_tokenizer):
    chosen = " sure here is the start of my answer" + " filler" * 100
    items, _ = encode_pairs([{"prompt": LONG_PROMPT, "chosen": chosen, "rejected": " no"}], tiny_tokenizer, 40)
    text = tiny_tokenizer.decode(items[0]["chosen_ids"])

    assert "about tea? [SEP]" in text
    assert "sure here is the start of my answer" in text
    assert "word0 filler word1" not in text


def test_chosen_and_rejected_share_the_same_prompt_cut(tiny_tokenizer):
    row = {"prompt": LONG_PROMPT, "chosen": " tea " * 30, "rejected": " no"}
    items, _ = encode_pairs([row], tiny_tokenizer, 64)
    sep = tiny_tokenizer.sep_token_id
    chosen, rejected = items[0]["chosen_ids"], items[0]["rejected_ids"]
    assert chosen[: chosen.index(sep)] == rejected[: rejected.index(sep)]


def test_short_pair_is_untouched_and_framed_like_a_bert_text_pair(tiny_tokenizer):
    row = {"prompt": "\n\nHuman: hi\n\nAssistant:", "chosen": " hello there", "rejected": " go away"}
    items, stats = encode_pairs([row], tiny_tokenizer, 64)
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id

    expected = [cls, *_ids(tiny_tokenizer, row["prompt"]), sep, *_ids(tiny_tokenizer, row["chosen"]), sep]
    assert items[0]["chosen_ids"] == expected
    assert stats.truncated_pairs == 0
    assert items[0]["rejected_ids"][-1] == tiny_tokenizer.eos_token_id == sep  # ends with EOS, exactly once
    assert items[0]["rejected_ids"][-2] != sep


def test_encoder_appends_eos_for_tokenizers_without_special_tokens(tiny_tokenizer):
    from tokenizers import processors

    tiny_tokenizer.backend_tokenizer.post_processor = processors.Sequence([])  # GPT-2 style: no special tokens
    encoder = PairEncoder(tiny_tokenizer, 16)
    assert (encoder.prefix, encoder.middle, encoder.suffix) == ([], [], [tiny_tokenizer.eos_token_id])
    (seq,), _, _ = encoder.encode([5, 6], [[7, 8]])
    assert seq == [5, 6, 7, 8, tiny_tokenizer.eos_token_id]


def test_chat_prompt_is_rendered_like_the_plain_hh_text(tiny_tokenizer):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "tea?"},
    ]
    assert format_prompt(messages) == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: tea?\n\nAssistant:"
    assert format_completion([{"role": "assistant", "content": "Yes."}], messages) == " Yes."

    plain = {"prompt": format_prompt(messages), "chosen": " Yes.", "rejected": " No."}
    chat = {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": "Yes."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    }
    assert encode_pairs([plain], tiny_tokenizer, 64)[0] == encode_pairs([chat], tiny_tokenizer, 64)[0]


def test_margin_column_is_kept_only_when_use_margin(tiny_tokenizer):
    rows = [{**row, "margin": 2.0} for row in pair_rows(2)]
    rows[1].pop("margin")
    with_margin, _ = encode_pairs(rows, tiny_tokenizer, 64, use_margin=True)
    without, _ = encode_pairs(rows, tiny_tokenizer, 64, use_margin=False)
    assert [item["margin"] for item in with_margin] == [2.0, 0.0]
    assert "margin" not in without[0]


def test_encode_sequences_matches_the_training_encoding(tiny_tokenizer):
    rows = pair_rows(3, long_every=2)
    items, _ = encode_pairs(rows, tiny_tokenizer, 64)
    seqs, cut = encode_sequences(tiny_tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows], 64)
    assert seqs == [item["chosen_ids"] for item in items]  # the longer one sets the pair's prompt cut
    assert cut == 2


def test_read_pairs_names_the_bad_line(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", pair_rows(2))
    with path.open("a") as fh:
        fh.write(json.dumps({"prompt": "x", "chosen": "y"}) + "\n")
    with pytest.raises(DataError, match="line 3: a preference row needs 'chosen' and 'rejected'"):
        read_pairs(path)
    with pytest.raises(DataError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_ties_are_set_aside_and_counted():
    rows = pair_rows(3)
    rows[0]["tie"] = True
    kept, ties = without_ties(rows)
    assert (len(kept), ties) == (2, 1)
    with pytest.raises(DataError, match="every row is a tie"):
        without_ties([{**rows[0]}])


def test_row_meta_reads_top_level_or_metadata_dict():
    assert row_meta({"category": "qa"}, "category") == "qa"
    assert row_meta({"metadata": {"guideline_version": 3}}, "guideline_version") == 3
    assert row_meta({}, "category") is None
