"""What both hand-off bundles share: pairs read from a JSONL export and turned into chat messages, Parquet and
JSONL writers, launch scripts rendered from a list of arguments, batch sizes that fit the data, and the README's
tables. Plain Python (orjson, pyarrow), no Django."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from annotation.exports.split import TEST, TRAIN

# The platform's default policy (rlhf/training/models.py prepares it offline from a GGUF here); a cluster downloads it.
DEFAULT_POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
MOST_GPUS = 8
MAX_PROMPT_BATCH = 1024  # OpenRLHF's default --rollout.batch_size, verl's default data.train_batch_size
PARQUET_ROWS = 1000
README_TEMPLATE = str(Path(__file__).parent / "readmes" / "{engine}.md")  # str.format templates

# The platform fields each bundle maps (their defaults are read from the training configs).
RM_FIELDS = ("max_length", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
             "learning_rate", "warmup_ratio", "weight_decay", "seed")  # fmt: skip
PPO_FIELDS = ("learning_rate", "kl_coef", "kl_estimator", "kl_target", "kl_horizon", "cliprange", "cliprange_value",
              "gamma", "lam", "temperature", "response_length", "max_prompt_length", "num_ppo_epochs",
              "per_device_train_batch_size", "total_episodes", "seed")  # fmt: skip
NOT_MAPPED = {
    "missing_eos_penalty": "no equivalent: OpenRLHF's --reward.stop_properly_penalty_coef scales or overrides the "
    "reward of a truncated sample, verl has none",
    "whiten_rewards": "not set (OpenRLHF: --reward.normalize_enable normalises rewards, off by default)",
    "vf_coef": "the engines train the critic with its own optimizer (no shared loss to weight)",
    "top_p, repetition_penalty": "the platform uses them only for its before/after samples; rollouts sample the "
    "whole distribution (top_p 1.0) in both",
}


def platform_defaults() -> dict[str, dict[str, Any]]:
    """The platform's default hyper-parameters: {"reward_model": {...}, "ppo": {...}} from the training configs."""
    from rlhf.training.config import RewardModelConfig  # noqa: PLC0415 - plain dataclasses, no torch
    from rlhf.training.ppo_config import PPORunConfig  # noqa: PLC0415

    def defaults(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
        values = {f.name: f.default for f in fields(cls)}
        return {name: values[name] for name in names}

    return {"reward_model": defaults(RewardModelConfig, RM_FIELDS), "ppo": defaults(PPORunConfig, PPO_FIELDS)}


# --- rows ----------------------------------------------------------------------------------------------------------


def _chat():
    from rlhf.training import chat  # noqa: PLC0415 - plain Python, the rendering every training stage uses

    return chat


@dataclass
class PromptRows:
    """One prompt of a split and its pairs (an export writes a prompt's rows together)."""

    id: int
    category: str
    messages: list[dict[str, str]]
    pairs: int = 0
    wins: Counter = field(default_factory=Counter)
    texts: dict[int, str] = field(default_factory=dict)

    def preferred(self) -> str:
        """The response chosen most often in this prompt's pairs (ties: the lowest response id)."""
        if not self.wins:
            return ""
        best = min(self.wins, key=lambda rid: (-self.wins[rid], rid))
        return self.texts[best]


def _messages(prompt: Any) -> list[dict[str, str]]:
    """A prompt as chat messages. A conversational export makes a text prompt one user turn; its text is parsed
    here like any text prompt (HH-style "Human: ... Assistant:" text becomes turns)."""
    if _chat().is_chat(prompt) and len(prompt) == 1 and prompt[0].get("role") == "user":
        prompt = prompt[0].get("content") or ""
    messages = _chat().prompt_messages(prompt)
    return messages or [{"role": "user", "content": ""}]


def _reply(completion: Any) -> list[dict[str, str]]:
    return _chat().completion_messages(completion)


def _text(completion: Any) -> str:
    return "\n\n".join(m["content"] for m in _reply(completion))


def read_split(path: Path) -> Iterator[tuple[dict[str, Any], PromptRows]]:
    """(pair row as chat messages, its prompt) for every row of a full-columns JSONL export; the prompt object is
    shared by the rows of one prompt and complete once the next prompt starts."""
    current: PromptRows | None = None
    if not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            if row.get("tie"):  # a tie is no preference: OpenRLHF and verl would train on it as one
                continue
            if current is None or current.id != row["prompt_id"]:
                current = PromptRows(row["prompt_id"], row.get("category") or "", _messages(row["prompt"]))
            current.pairs += 1
            current.wins[row["chosen_id"]] += 1
            current.texts.setdefault(row["chosen_id"], _text(row["chosen"]))
            pair = {"prompt": current.messages, "chosen": _reply(row["chosen"]), "rejected": _reply(row["rejected"])}
            if "margin" in row:
                pair["margin"] = float(row["margin"])
            yield pair, current


def prompts_of(rows: Iterator[tuple[dict[str, Any], PromptRows]], on_pair=None) -> Iterator[PromptRows]:
    """Each prompt once, complete (all its pairs seen), in export order; ``on_pair(pair)`` sees every pair."""
    seen: set[int] = set()
    last: PromptRows | None = None
    for pair, prompt in rows:
        if on_pair is not None:
            on_pair(pair)
        if last is not None and prompt is not last and last.id not in seen:
            seen.add(last.id)
            yield last
        last = prompt
    if last is not None and last.id not in seen:
        yield last


class ParquetRows:
    """Rows into a Parquet file with a fixed schema, a row group per PARQUET_ROWS rows."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema, self.rows, self.count = path, schema, [], 0
        self.writer = pq.ParquetWriter(path, schema)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= PARQUET_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


class JsonlRows:
    def __init__(self, path: Path) -> None:
        self.path, self.count, self.handle = path, 0, path.open("wb")

    def add(self, row: dict[str, Any]) -> None:
        self.handle.write(orjson.dumps(row) + b"\n")
        self.count += 1

    def close(self) -> None:
        self.handle.close()


def rm_schema(margin: bool) -> pa.Schema:
    columns = [("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES)]
    return pa.schema(columns + ([("margin", pa.float64())] if margin else []))


# --- scripts -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One flag (OpenRLHF: ``--data.max_len``; a switch has value None) or Hydra override (verl: ``data.x``)."""

    name: str
    value: str | None = None
    source: str = ""  # where the value comes from, for the README: "RewardModelConfig.learning_rate", "data", ...


def num(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if value >= 1 else repr(value)
    return repr(value) if isinstance(value, float) else str(value)


def batch_plan(items: int, micro: int, cap: int = MAX_PROMPT_BATCH) -> tuple[int, int, int]:
    """(batch, micro batch, GPUs) that fit ``items`` rows: the batch is at most ``cap`` and the rows, a multiple of
    micro x GPUs (both engines split a batch evenly over micro batches on every GPU), with GPUs a power of two up to
    8. A small export thus defaults to fewer GPUs; the scripts' environment variables override all three."""
    micro = max(1, min(micro, items)) if items else 1
    batch = max(micro, min(cap, items) // micro * micro)
    gpus = MOST_GPUS
    while gpus > 1 and batch % (micro * gpus):
        gpus //= 2
    return batch, micro, gpus


def render_script(header: str, env: list[tuple[str, str, str]], command: str, args: list[Arg], style: str) -> str:
    lines = ["#!/usr/bin/env bash", *(f"# {line}" if line else "#" for line in header.splitlines())]
    lines += ["set -euo pipefail", 'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"', ""]
    for name, default, comment in env:
        lines.append(f'{name}="${{{name}:-{default}}}"  # {comment}')
    lines += ["", command + " \\"]
    for arg in args:
        if style == "flags":
            lines.append(f"   {arg.name}" + ("" if arg.value is None else f" {arg.value}") + " \\")
        else:
            lines.append(f"    {arg.name}={arg.value} \\")
    lines.append('   "$@"')
    return "\n".join(lines) + "\n"


def write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o755)  # noqa: S103 - a launch script, meant to be run


def has_margin(work: Path) -> bool:
    for split in (TRAIN, TEST):
        path = work / f"{split}.jsonl"
        if path.exists() and path.stat().st_size:
            with path.open("rb") as handle:
                return "margin" in orjson.loads(handle.readline())
    return False


def data_source(context: dict[str, Any]) -> str:
    return f"rlhf-platform/{context['project']['slug']}"


def table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows])


def mapped(scripts: dict[str, list[Arg]]) -> list[tuple[str, ...]]:
    rows = []
    for script, args in scripts.items():
        for arg in args:
            if arg.source.startswith(("RewardModelConfig", "PPORunConfig")):
                rows.append((arg.source, f"`{arg.name}" + (f" {arg.value}`" if arg.value else "`"), script))
    return rows


def readme_values(facts: dict[str, Any], meta: dict[str, Any]) -> dict[str, str]:
    """The README's parts both engines share: provenance, the environment variables, the hyper-parameter mapping."""
    counts, project = facts["counts"], meta["project"]
    env_rows = [(f"`{name}`", f"`{default}`" if default else "(required)", comment, script)
                for script, env in facts["env"].items() for name, default, comment in env]  # fmt: skip
    provenance = (
        f"Exported from project **{project['name']}** (`{project['slug']}`) on {meta['created_at']} "
        f"(platform commit `{meta.get('git_commit') or 'unknown'}`), strategy `{meta['strategy']}`: "
        f"{counts['train_prompts']} training prompts with {counts['rm_train_pairs']} preference pairs, "
        f"{counts['test_prompts']} held-out prompts with {counts['rm_test_pairs']} pairs. Tied pairs are left out "
        "(neither engine models ties). `export_meta.json` has every count, filter, labeler and the agreement; its "
        "`files` lists this bundle's files with their sha256."
    )
    not_mapped = "\n".join(f"- `{name}`: {why}" for name, why in NOT_MAPPED.items())
    mapping = table(mapped(facts["scripts"]), ("platform default", "engine setting", "script"))
    env = table(env_rows, ("variable", "default", "meaning", "script"))
    return {"provenance": provenance, "env": env, "mapping": mapping, "not_mapped": not_mapped,
            "policy": DEFAULT_POLICY}  # fmt: skip
