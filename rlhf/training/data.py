"""Preference pairs from the export's JSONL to token ids, truncated so that no pair is ever dropped.

A row is TRL's preference format: `prompt` (text, or chat messages [{role, content}]), `chosen`, `rejected` (text, or
a list of assistant messages), optionally `margin`, `category`, `guideline_version` (also read from `metadata`).

Why we tokenize ourselves: TRL's RewardTrainer tokenizes text rows itself and then silently *drops* every pair whose
chosen or rejected sequence is longer than `max_length`. On real dialogue data that is a large share of the pairs
(and the hardest ones). We hand it pre-tokenized `chosen_ids` / `rejected_ids` instead, cut to fit ("left-prompt"):
the prompt keeps its *end* (the last turns matter most), each completion keeps its *start*, and both sequences of a
pair share the same prompt cut so the comparison stays fair. Every cut pair is counted (`train/truncated_pairs`).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.training.chat import render_chat

META_KEYS = ("category", "guideline_version")


class DataError(ValueError):
    """The JSONL file is missing or a row is not a preference pair."""


def numbered_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; DataError names the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not JSON ({exc.msg}).") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {number}: expected a JSON object.")
            rows.append((number, row))
    return rows


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; DataError names the first bad line."""
    rows = [row for _, row in numbered_rows(path)]
    if not rows:
        raise DataError(f"{path}: the file has no rows.")
    return rows


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a preference JSONL file; raises DataError with the line number of the first bad row."""
    if not str(path):
        raise DataError("No preference file given (train_file is required).")
    rows = []
    for number, row in numbered_rows(path):
        if "chosen" not in row or "rejected" not in row:
            raise DataError(f"{path}, line {number}: a preference row needs 'chosen' and 'rejected'.")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no preference pairs in the file.")
    return rows


def without_ties(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows that prefer one response, and how many tie rows (`tie: true`, from `--ties keep`) were set aside:
    a pairwise loss has nothing to learn from a tie. The count is reported, never silent."""
    kept = [row for row in rows if not row.get("tie")]
    if not kept:
        raise DataError("every row is a tie: there is no preference to learn from.")
    return kept, len(rows) - len(kept)


def row_meta(row: dict[str, Any], key: str) -> Any:
    """A metadata column (category, guideline_version) from the row or its `metadata` dict; None when absent."""
    if row.get(key) is not None:
        return row[key]
    meta = row.get("metadata")
    return meta.get(key) if isinstance(meta, dict) else None


def format_prompt(prompt: Any, tokenizer: Any = None) -> str:
    """Prompt text as every stage renders it (`chat.render_chat`): the tokenizer's chat template when it has one
    (HH text parsed into turns first), else the text as it is / chat prompts as HH-style turns."""
    return render_chat(tokenizer, prompt)[0]


def format_completion(completion: Any, prompt: Any = None, tokenizer: Any = None) -> str:
    """Completion text, rendered so that format_prompt(p) + format_completion(c, p) reads as one dialogue; with a chat
    template it ends with the template's end of turn (the EOS, e.g. SmolLM2's `<|im_end|>`)."""
    return render_chat(tokenizer, prompt, completion)[1]


@dataclass
class TruncationStats:
    pairs: int = 0
    truncated_pairs: int = 0
    prompt_truncated: int = 0
    completion_truncated: int = 0
    longest_tokens: int = 0  # the longest sequence before truncation, special tokens included

    def as_metrics(self, prefix: str = "train") -> dict[str, float]:
        return {
            f"{prefix}/pairs": self.pairs,
            f"{prefix}/truncated_pairs": self.truncated_pairs,
            f"{prefix}/prompt_truncated_pairs": self.prompt_truncated,
            f"{prefix}/completion_truncated_pairs": self.completion_truncated,
            f"{prefix}/longest_tokens": self.longest_tokens,
        }


@dataclass
class PairEncoder:
    """Token ids for (prompt, completion) sequences: special tokens as the tokenizer places them for a text pair
    ([CLS] prompt [SEP] completion [SEP] for BERT), always ending with the EOS token, at most max_length long."""

    tokenizer: Any
    max_length: int
    prefix: list[int] = field(init=False)
    middle: list[int] = field(init=False)
    suffix: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.prefix, self.middle, self.suffix = self._special_template()
        eos = self.tokenizer.eos_token_id
        if eos is not None and (not self.suffix or self.suffix[-1] != eos):
            self.suffix = [*self.suffix, eos]
        self.budget = self.max_length - len(self.prefix) - len(self.middle) - len(self.suffix)
        if self.budget < 4:
            raise ValueError(f"max_length={self.max_length} leaves no room for text after the special tokens.")

    def _special_template(self) -> tuple[list[int], list[int], list[int]]:
        """Find where the tokenizer puts its special tokens around a text pair, by encoding two known words."""
        tok = self.tokenizer
        a = tok("hello", add_special_tokens=False)["input_ids"]
        b = tok("world", add_special_tokens=False)["input_ids"]
        try:
            full = tok("hello", "world")["input_ids"]
        except Exception:  # noqa: BLE001 - tokenizers without pair support: no special tokens
            return [], [], []
        for i in range(len(full) - len(a) + 1):
            if full[i : i + len(a)] == a:
                for j in range(i + len(a), len(full) - len(b) + 1):
                    if full[j : j + len(b)] == b:
                        return full[:i], full[i + len(a) : j], full[j + len(b) :]
        return [], [], []

    def encode(self, prompt_ids: list[int], completions: list[list[int]]) -> tuple[list[list[int]], bool, bool]:
        """Sequences for one prompt and its completions (same prompt cut for all); and whether prompt/completion
        were cut."""
        longest = max(len(c) for c in completions)
        p_keep, c_keep = len(prompt_ids), longest
        if len(prompt_ids) + longest > self.budget:
            # The prompt keeps its end: at least a third of the budget (all of it when shorter), the rest goes to
            # the start of each completion.
            p_keep = min(len(prompt_ids), max(self.budget - longest, self.budget // 3))
            c_keep = self.budget - p_keep
        prompt = prompt_ids[len(prompt_ids) - p_keep :]
        middle = self.middle if prompt else []
        seqs = [self.prefix + prompt + middle + c[:c_keep] + self.suffix for c in completions]
        return seqs, p_keep < len(prompt_ids), c_keep < longest

    def untruncated_length(self, prompt_ids: list[int], completions: list[list[int]]) -> int:
        extra = len(self.prefix) + len(self.middle) + len(self.suffix)
        return len(prompt_ids) + max(len(c) for c in completions) + extra


def _token_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []


def completion_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of rendered completions without their closing EOS (a chat template's end of turn): the encoders
    append the EOS themselves, after any truncation, so it is there exactly once."""
    eos = tokenizer.eos_token_id
    return [ids[:-1] if ids and ids[-1] == eos else ids for ids in _token_ids(tokenizer, texts)]


def encode_pairs(
    rows: list[dict[str, Any]], tokenizer: Any, max_length: int, use_margin: bool = False
) -> tuple[list[dict[str, Any]], TruncationStats]:
    """TRL's processed format ({chosen_ids, rejected_ids[, margin]}), one item per input row: none is dropped."""
    encoder = PairEncoder(tokenizer, max_length)
    prompts = [format_prompt(row.get("prompt"), tokenizer) for row in rows]
    chosen = [format_completion(row["chosen"], row.get("prompt"), tokenizer) for row in rows]
    rejected = [format_completion(row["rejected"], row.get("prompt"), tokenizer) for row in rows]
    p_ids = _token_ids(tokenizer, prompts)
    c_ids, r_ids = completion_ids(tokenizer, chosen), completion_ids(tokenizer, rejected)
    with_margin = use_margin and any(row.get("margin") is not None for row in rows)
    stats, items = TruncationStats(pairs=len(rows)), []
    for row, p, c, r in zip(rows, p_ids, c_ids, r_ids, strict=True):
        (c_seq, r_seq), p_cut, c_cut = encoder.encode(p, [c, r])
        stats.longest_tokens = max(stats.longest_tokens, encoder.untruncated_length(p, [c, r]))
        stats.truncated_pairs += p_cut or c_cut
        stats.prompt_truncated += p_cut
        stats.completion_truncated += c_cut
        item = {"chosen_ids": c_seq, "rejected_ids": r_seq}
        if with_margin:
            item["margin"] = float(row.get("margin") or 0.0)
        items.append(item)
    return items, stats


def encode_sequences(
    tokenizer: Any, prompts: list[Any], responses: list[Any], max_length: int
) -> tuple[list[list[int]], int]:
    """One sequence per (prompt, response), formatted and truncated exactly as in training; and how many were cut."""
    encoder = PairEncoder(tokenizer, max_length)
    p_ids = _token_ids(tokenizer, [format_prompt(p, tokenizer) for p in prompts])
    texts = [format_completion(c, p, tokenizer) for p, c in zip(prompts, responses, strict=True)]
    c_ids = completion_ids(tokenizer, texts)
    seqs, cut = [], 0
    for p, c in zip(p_ids, c_ids, strict=True):
        (seq,), p_cut, c_cut = encoder.encode(p, [c])
        seqs.append(seq)
        cut += p_cut or c_cut
    return seqs, cut


def training_texts(rows: list[dict[str, Any]]) -> list[str]:
    """All texts of the rows (for training the tiny model's tokenizer)."""
    return [
        text
        for row in rows
        for text in (
            format_prompt(row.get("prompt")),
            format_completion(row["chosen"]),
            format_completion(row["rejected"]),
        )
    ]
