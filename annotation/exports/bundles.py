"""Hand-off bundles for the Ray-based PPO engines: a directory a user copies to a GPU cluster and runs.

``openrlhf``: reward-model pairs and PPO prompts as JSONL, ``train_rm.sh`` and ``train_ppo.sh``.
``verl``: RL prompts as Parquet in verl's RL dataset schema, reward-model pairs as Parquet, ``run_ppo.sh``.
Each with a README.md and export_meta.json. Built from a JSONL export (the pipeline in ``run.py``), streamed row by
row, so memory stays flat.

Every key, column and flag was read in the engines' own sources, at the versions pinned below (a test checks each
flag or config key the scripts name against lists generated from those sources by scripts/engine_schemas.py):

- OpenRLHF 0.11.0 (tag v0.11.0): openrlhf/cli/train_rm.py and openrlhf/cli/train_ppo_ray.py (the flags; since
  0.11 they are hierarchical, ``--data.prompt_key`` rather than ``--prompt_key``), openrlhf/datasets/
  reward_dataset.py (``preprocess_data``: with ``--data.apply_chat_template``, ``prompt``, ``chosen`` and
  ``rejected`` are message lists, rendered as ``apply_chat_template(prompt + chosen)``; the optional ``margin``
  key), openrlhf/datasets/prompts_dataset.py (``--data.input_key``: a message list or a string; the optional
  ``datasource`` key), openrlhf/datasets/utils.py (``.jsonl`` files load with ``load_dataset("json")``, split
  ``train``), examples/scripts/train_rm.sh and train_ppo_ray_hybrid_engine.sh (the launchers).
- verl 0.7.0 (tag v0.7.0): verl/utils/dataset/rl_dataset.py (Parquet via ``load_dataset("parquet")``;
  ``data.prompt_key`` holds chat messages given to ``apply_chat_template``; ``extra_info.index``),
  examples/data_preprocess/full_hh_rlhf.py and gsm8k.py (the columns ``data_source``, ``prompt``, ``ability``,
  ``reward_model`` {``style``, ``ground_truth``}, ``extra_info``; RM data as ``prompt``/``chosen``/``rejected``),
  verl/trainer/config/_generated_ppo_trainer.yaml and reward_model/dp_reward_loop.yaml (the config keys),
  examples/ppo_trainer/run_qwen2-7b_rm.sh (a model-based reward run), verl/experimental/reward_loop/reward_loop.py
  (the RM scores prompt + response through its own tokenizer's chat template) and verl/trainer/ppo/ray_trainer.py
  (validation runs only for rule-based rewards).

Plain Python (orjson, pyarrow), no Django. The platform's hyper-parameters come from the training configs' defaults
(``platform_defaults``); prompts are turned into chat messages as every training stage does
(``rlhf.training.chat``).
"""

from __future__ import annotations

import math
import os
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from annotation.exports.split import TEST, TRAIN
from annotation.exports.writers import file_sha256

OPENRLHF, VERL = "openrlhf", "verl"
BUNDLE_FORMATS: tuple[str, ...] = (OPENRLHF, VERL)
OPENRLHF_VERSION, OPENRLHF_COMMIT = "0.11.0", "3c3be6234e0cb353e76bb8019947db9dfe99fca7"
VERL_VERSION, VERL_COMMIT = "0.7.0", "f9c855f7cf04d603c9546bc01776c74806a879c1"
OPENRLHF_SOURCES = (
    "openrlhf/cli/train_rm.py",
    "openrlhf/cli/train_ppo_ray.py",
    "openrlhf/datasets/reward_dataset.py",
    "openrlhf/datasets/prompts_dataset.py",
    "openrlhf/datasets/utils.py",
    "examples/scripts/train_rm.sh",
    "examples/scripts/train_ppo_ray_hybrid_engine.sh",
)
VERL_SOURCES = (
    "verl/utils/dataset/rl_dataset.py",
    "examples/data_preprocess/full_hh_rlhf.py",
    "examples/data_preprocess/gsm8k.py",
    "verl/trainer/config/_generated_ppo_trainer.yaml",
    "verl/trainer/config/reward_model/dp_reward_loop.yaml",
    "examples/ppo_trainer/run_qwen2-7b_rm.sh",
    "verl/experimental/reward_loop/reward_loop.py",
    "verl/trainer/ppo/ray_trainer.py",
)
# The platform's default policy (rlhf/training/models.py prepares it offline from a GGUF here); a cluster downloads it.
DEFAULT_POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"
ABILITY = "alignment"  # as verl's full_hh_rlhf.py labels preference data
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
VERL_RL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", MESSAGES),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("split", pa.string()),
                    ("index", pa.int64()),
                    ("prompt_id", pa.int64()),
                    ("category", pa.string()),
                    ("pairs", pa.int64()),
                ]  # fmt: skip
            ),
        ),
    ]
)
MOST_GPUS = 8
MAX_PROMPT_BATCH = 1024  # OpenRLHF's default --rollout.batch_size, verl's default data.train_batch_size
PARQUET_ROWS = 1000
README_TEMPLATE = str(Path(__file__).parent / "bundle_readmes" / "{engine}.md")  # str.format templates

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


def _num(value: Any) -> str:
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


def _script(header: str, env: list[tuple[str, str, str]], command: str, args: list[Arg], style: str) -> str:
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


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o755)  # noqa: S103 - a launch script, meant to be run


# --- OpenRLHF ------------------------------------------------------------------------------------------------------


def _openrlhf(work: Path, out: Path, context: dict[str, Any], hyper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    margin = _has_margin(work)
    counts: dict[str, int] = {}
    source = _data_source(context)
    for split in (TRAIN, TEST):
        pairs = JsonlRows(data / f"rm_{split}.jsonl")
        prompts = JsonlRows(data / f"prompts_{split}.jsonl")
        try:
            for prompt in prompts_of(read_split(work / f"{split}.jsonl"), on_pair=pairs.add):
                prompts.add({"prompt": prompt.messages, "datasource": source, "prompt_id": prompt.id,
                             "category": prompt.category})  # fmt: skip
        finally:
            pairs.close()
            prompts.close()
        counts[f"rm_{split}_pairs"], counts[f"{split}_prompts"] = pairs.count, prompts.count

    rm, ppo = hyper["reward_model"], hyper["ppo"]
    accum = int(rm["gradient_accumulation_steps"])
    _, rm_micro, rm_gpus = batch_plan(counts["rm_train_pairs"] // accum, int(rm["per_device_train_batch_size"]), 10**9)
    rm_gpus = max(1, min(rm_gpus, counts["rm_train_pairs"] // max(rm_micro * accum, 1)))
    rm_gpus = 1 << (rm_gpus.bit_length() - 1)
    rm_env = [
        ("PRETRAIN", DEFAULT_POLICY, "base of the reward model: the platform's default policy (a Hub id or a folder)"),
        ("OUTPUT_DIR", "$HERE/checkpoint/rm", "the trained reward model (Hugging Face format); train_ppo.sh reads it"),
        ("GPUS", str(rm_gpus), "GPUs on this node (deepspeed --num_gpus)"),
        ("MICRO_BATCH_SIZE", str(rm_micro), "pairs per GPU and step (RewardModelConfig.per_device_train_batch_size)"),
        ("BATCH_SIZE", f"$((MICRO_BATCH_SIZE * GPUS * {accum}))", "global batch (x gradient_accumulation_steps)"),
        ("ATTN_IMPLEMENTATION", "flash_attention_2", "OpenRLHF's default; 'sdpa' where flash-attn is not installed"),
    ]
    rm_args = [
        Arg("--model.model_name_or_path", '"$PRETRAIN"', "env PRETRAIN"),
        Arg("--data.dataset", '"$HERE/data/rm_train.jsonl"', "data"),
        Arg("--data.prompt_key", "prompt", "data"),
        Arg("--data.chosen_key", "chosen", "data"),
        Arg("--data.rejected_key", "rejected", "data"),
        Arg("--data.apply_chat_template", None, "data: chat messages, rendered by the model's chat template"),
        Arg("--data.max_len", _num(rm["max_length"]), "RewardModelConfig.max_length"),
        Arg("--train.max_epochs", str(max(1, math.ceil(rm["num_train_epochs"]))), "RewardModelConfig.num_train_epochs"),
        Arg("--train.micro_batch_size", '"$MICRO_BATCH_SIZE"', "RewardModelConfig.per_device_train_batch_size"),
        Arg("--train.batch_size", '"$BATCH_SIZE"', "RewardModelConfig.gradient_accumulation_steps x GPUs x micro"),
        Arg("--adam.lr", _num(rm["learning_rate"]), "RewardModelConfig.learning_rate"),
        Arg("--lr_warmup_ratio", _num(rm["warmup_ratio"]), "RewardModelConfig.warmup_ratio"),
        Arg("--adam.weight_decay", _num(rm["weight_decay"]), "RewardModelConfig.weight_decay"),
        Arg("--train.seed", _num(rm["seed"]), "RewardModelConfig.seed"),
        Arg("--ds.zero_stage", "2", "engine"),
        Arg("--ds.param_dtype", "bf16", "engine"),
        Arg("--ds.attn_implementation", '"$ATTN_IMPLEMENTATION"', "env ATTN_IMPLEMENTATION"),
        Arg("--ckpt.output_dir", '"$OUTPUT_DIR"', "env OUTPUT_DIR"),
        Arg("--logger.logging_steps", "1", "engine"),
    ]
    if counts["rm_test_pairs"]:
        rm_args[2:2] = [Arg("--eval.dataset", '"$HERE/data/rm_test.jsonl"', "data")]
    if margin:
        rm_args.append(Arg("--model.margin_loss_enable", None, "data: the export's margin column (--margin rank-diff)"))
    _write_script(
        out / "train_rm.sh",
        _script(
            f"Reward model with OpenRLHF {OPENRLHF_VERSION} (DeepSpeed), on data/rm_train.jsonl (held out: "
            "data/rm_test.jsonl).\nRun on a GPU node: bash train_rm.sh [more OpenRLHF flags]. See README.md.",
            rm_env, 'deepspeed --num_gpus "$GPUS" --module openrlhf.cli.train_rm', rm_args, "flags",
        ),
    )  # fmt: skip

    batch, micro, gpus = batch_plan(counts["train_prompts"], int(ppo["per_device_train_batch_size"]))
    episodes = max(1, math.ceil(int(ppo["total_episodes"]) / max(counts["train_prompts"], 1)))
    ppo_env = [
        ("POLICY", DEFAULT_POLICY, "the policy to optimise: the platform's default (a Hub id or a folder)"),
        ("REWARD_MODEL", "$HERE/checkpoint/rm", "what train_rm.sh wrote (or any sequence-classification reward model)"),
        ("OUTPUT_DIR", "$HERE/checkpoint/ppo", "the trained policy (Hugging Face format)"),
        ("NNODES", "1", "nodes of the Ray cluster"),
        ("GPUS_PER_NODE", str(gpus), "GPUs per node (all models colocated, one vLLM engine per GPU)"),
        ("ROLLOUT_BATCH_SIZE", str(batch), f"prompts per PPO step (the bundle has {counts['train_prompts']})"),
        ("TRAIN_BATCH_SIZE", "$ROLLOUT_BATCH_SIZE", "one optimizer batch per rollout (PPORunConfig.num_mini_batches)"),
        ("MICRO_BATCH_SIZE", str(micro), "samples per GPU and step (PPORunConfig.per_device_train_batch_size)"),
        ("EPISODES", str(episodes), f"passes over the prompts: >= total_episodes={ppo['total_episodes']} samples"),
        ("ATTN_IMPLEMENTATION", "flash_attention_2", "OpenRLHF's default; 'sdpa' where flash-attn is not installed"),
    ]  # fmt: skip
    nodes = [Arg(f"--{role}.{what}", f'"${var}"', "env") for role in ("ref", "reward", "critic", "actor")
             for what, var in (("num_nodes", "NNODES"), ("num_gpus_per_node", "GPUS_PER_NODE"))]  # fmt: skip
    kl = [Arg("--algo.kl.init_coef", _num(ppo["kl_coef"]), "PPORunConfig.kl_coef"),
          Arg("--algo.kl.estimator", str(ppo["kl_estimator"]), "PPORunConfig.kl_estimator"),
          Arg("--algo.kl.horizon", _num(ppo["kl_horizon"]), "PPORunConfig.kl_horizon")]  # fmt: skip
    if ppo["kl_target"] is not None:
        kl.append(Arg("--algo.kl.target", _num(ppo["kl_target"]), "PPORunConfig.kl_target"))
    ppo_args = [
        *nodes,
        Arg("--vllm.num_engines", '"$((NNODES * GPUS_PER_NODE))"', "engine: hybrid engine, one per GPU"),
        Arg("--vllm.tensor_parallel_size", "1", "engine"),
        Arg("--vllm.gpu_memory_utilization", "0.5", "engine"),
        Arg("--vllm.enable_sleep", None, "engine"),
        Arg("--ds.enable_sleep", None, "engine"),
        Arg("--train.colocate_all", None, "engine"),
        Arg("--actor.model_name_or_path", '"$POLICY"', "env POLICY"),
        Arg("--reward.model_name_or_path", '"$REWARD_MODEL"', "env REWARD_MODEL"),
        Arg("--ckpt.output_dir", '"$OUTPUT_DIR"', "env OUTPUT_DIR"),
        Arg("--ckpt.save_hf", None, "engine"),
        Arg("--data.prompt_dataset", '"$HERE/data/prompts_train.jsonl"', "data"),
        Arg("--data.input_key", "prompt", "data"),
        Arg("--data.apply_chat_template", None, "data: chat messages, rendered by the policy's chat template"),
        Arg(
            "--data.max_len",
            _num(int(ppo["max_prompt_length"]) + int(ppo["response_length"])),
            "PPORunConfig.max_prompt_length + response_length",
        ),
        Arg("--rollout.max_new_tokens", _num(ppo["response_length"]), "PPORunConfig.response_length"),
        Arg("--rollout.batch_size", '"$ROLLOUT_BATCH_SIZE"', "env ROLLOUT_BATCH_SIZE"),
        Arg("--rollout.temperature", _num(ppo["temperature"]), "PPORunConfig.temperature"),
        Arg("--train.batch_size", '"$TRAIN_BATCH_SIZE"', "env TRAIN_BATCH_SIZE"),
        Arg("--train.micro_batch_size", '"$MICRO_BATCH_SIZE"', "PPORunConfig.per_device_train_batch_size"),
        Arg("--train.max_epochs", _num(ppo["num_ppo_epochs"]), "PPORunConfig.num_ppo_epochs"),
        Arg("--train.num_episodes", '"$EPISODES"', "PPORunConfig.total_episodes / prompts"),
        Arg("--train.seed", _num(ppo["seed"]), "PPORunConfig.seed"),
        Arg("--actor.adam.lr", _num(ppo["learning_rate"]), "PPORunConfig.learning_rate"),
        Arg("--critic.adam.lr", _num(ppo["learning_rate"]), "PPORunConfig.learning_rate (policy and value model)"),
        *kl,
        Arg("--actor.eps_clip", _num(ppo["cliprange"]), "PPORunConfig.cliprange"),
        Arg("--critic.value_clip", _num(ppo["cliprange_value"]), "PPORunConfig.cliprange_value"),
        Arg("--algo.advantage.estimator", "gae", "the platform's PPO: GAE with a value model"),
        Arg("--algo.advantage.gamma", _num(ppo["gamma"]), "PPORunConfig.gamma"),
        Arg("--algo.advantage.lambd", _num(ppo["lam"]), "PPORunConfig.lam"),
        Arg("--ds.zero_stage", "2", "engine"),
        Arg("--ds.param_dtype", "bf16", "engine"),
        Arg("--ds.attn_implementation", '"$ATTN_IMPLEMENTATION"', "env ATTN_IMPLEMENTATION"),
        Arg("--actor.gradient_checkpointing_enable", None, "engine"),
    ]
    _write_script(
        out / "train_ppo.sh",
        _script(
            f"PPO with OpenRLHF {OPENRLHF_VERSION} (Ray + vLLM hybrid engine) on data/prompts_train.jsonl, rewarded "
            "by the model train_rm.sh wrote.\nStart Ray first (ray start --head; workers: ray start --address "
            "HEAD:6379), then on the head: bash train_ppo.sh. See README.md.",
            ppo_env, "python3 -m openrlhf.cli.train_ppo_ray", ppo_args, "flags",
        ),
    )  # fmt: skip
    files = [f"data/{kind}_{split}.jsonl" for kind in ("rm", "prompts") for split in (TRAIN, TEST)]
    return {"counts": counts, "margin": margin, "scripts": {"train_rm.sh": rm_args, "train_ppo.sh": ppo_args},
            "env": {"train_rm.sh": rm_env, "train_ppo.sh": ppo_env},
            "files": [*files, "train_rm.sh", "train_ppo.sh"]}  # fmt: skip


# --- verl ----------------------------------------------------------------------------------------------------------

VERL_KL = {"k1": "kl", "k3": "low_var_kl"}  # the platform's estimators -> verl's algorithm.kl_penalty


def _verl(work: Path, out: Path, context: dict[str, Any], hyper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "reward_model").mkdir(parents=True, exist_ok=True)
    margin = _has_margin(work)
    counts: dict[str, int] = {}
    source = _data_source(context)
    for split in (TRAIN, TEST):
        pairs = ParquetRows(out / "reward_model" / f"{split}.parquet", rm_schema(margin))
        prompts = ParquetRows(out / "data" / f"{split}.parquet", VERL_RL_SCHEMA)
        try:
            for index, prompt in enumerate(prompts_of(read_split(work / f"{split}.jsonl"), on_pair=pairs.add)):
                prompts.add({
                    "data_source": source,
                    "prompt": prompt.messages,
                    "ability": ABILITY,
                    # style "model": the reward model scores; ground_truth (the response chosen most often) is for
                    # a custom reward function or reading only, as in verl's full_hh_rlhf.py
                    "reward_model": {"style": "model", "ground_truth": prompt.preferred()},
                    "extra_info": {"split": split, "index": index, "prompt_id": prompt.id,
                                   "category": prompt.category, "pairs": prompt.pairs},
                })  # fmt: skip
        finally:
            pairs.close()
            prompts.close()
        counts[f"rm_{split}_pairs"], counts[f"{split}_prompts"] = pairs.count, prompts.count

    ppo = hyper["ppo"]
    batch, micro, gpus = batch_plan(counts["train_prompts"], int(ppo["per_device_train_batch_size"]))
    epochs = max(1, math.ceil(int(ppo["total_episodes"]) / max(counts["train_prompts"], 1)))
    val = "test" if counts["test_prompts"] else "train"  # verl needs val files; a model reward skips validation
    env = [
        ("POLICY", DEFAULT_POLICY, "the policy to optimise (and the critic's base): the platform's default"),
        ("REWARD_MODEL", "", "required: a sequence-classification reward model with a chat template (README.md)"),
        ("OUTPUT_DIR", "$HERE/checkpoints", "checkpoints (trainer.default_local_dir)"),
        ("NNODES", "1", "nodes of the Ray cluster"),
        ("GPUS_PER_NODE", str(gpus), "GPUs per node"),
        ("TRAIN_BATCH_SIZE", str(batch), f"prompts per PPO step (the bundle has {counts['train_prompts']})"),
        ("MINI_BATCH_SIZE", "$TRAIN_BATCH_SIZE", "one optimizer batch per rollout (PPORunConfig.num_mini_batches)"),
        ("MICRO_BATCH_SIZE", str(micro), "per GPU (PPORunConfig.per_device_train_batch_size)"),
        ("EPOCHS", str(epochs), f"passes over the prompts: >= total_episodes={ppo['total_episodes']} samples"),
    ]  # fmt: skip
    kl = [Arg("algorithm.use_kl_in_reward", "True", "the platform's PPO: KL penalty in the reward"),
          Arg("algorithm.kl_penalty", VERL_KL.get(str(ppo["kl_estimator"]), "kl"), "PPORunConfig.kl_estimator"),
          Arg("algorithm.kl_ctrl.kl_coef", _num(ppo["kl_coef"]), "PPORunConfig.kl_coef"),
          Arg("algorithm.kl_ctrl.horizon", _num(ppo["kl_horizon"]), "PPORunConfig.kl_horizon")]  # fmt: skip
    if ppo["kl_target"] is None:
        kl.append(Arg("algorithm.kl_ctrl.type", "fixed", "PPORunConfig.kl_target unset"))
    else:
        kl += [Arg("algorithm.kl_ctrl.type", "adaptive", "PPORunConfig.kl_target set"),
               Arg("algorithm.kl_ctrl.target_kl", _num(ppo["kl_target"]), "PPORunConfig.kl_target")]  # fmt: skip
    prompt_len, response_len = int(ppo["max_prompt_length"]), int(ppo["response_length"])
    args = [
        Arg("algorithm.adv_estimator", "gae", "the platform's PPO: GAE with a value model"),
        Arg("data.train_files", '"$HERE/data/train.parquet"', "data"),
        Arg("data.val_files", f'"$HERE/data/{val}.parquet"', "data"),
        Arg("data.prompt_key", "prompt", "data"),
        Arg("data.reward_fn_key", "data_source", "data"),
        Arg("data.train_batch_size", '"$TRAIN_BATCH_SIZE"', "env TRAIN_BATCH_SIZE"),
        Arg("data.max_prompt_length", str(prompt_len), "PPORunConfig.max_prompt_length"),
        Arg("data.max_response_length", str(response_len), "PPORunConfig.response_length"),
        Arg("data.filter_overlong_prompts", "True", "engine (the platform keeps a long prompt's end instead)"),
        Arg("data.truncation", "left", "the platform keeps a prompt's end"),
        Arg("data.return_raw_chat", "True", "engine: the reward model re-renders the chat"),
        Arg("data.seed", _num(ppo["seed"]), "PPORunConfig.seed"),
        Arg("actor_rollout_ref.model.path", '"$POLICY"', "env POLICY"),
        Arg("actor_rollout_ref.model.enable_gradient_checkpointing", "True", "engine"),
        Arg("actor_rollout_ref.actor.optim.lr", _num(ppo["learning_rate"]), "PPORunConfig.learning_rate"),
        Arg("actor_rollout_ref.actor.ppo_mini_batch_size", '"$MINI_BATCH_SIZE"', "env MINI_BATCH_SIZE"),
        Arg("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env MICRO_BATCH_SIZE"),
        Arg("actor_rollout_ref.actor.ppo_epochs", _num(ppo["num_ppo_epochs"]), "PPORunConfig.num_ppo_epochs"),
        Arg("actor_rollout_ref.actor.clip_ratio", _num(ppo["cliprange"]), "PPORunConfig.cliprange"),
        Arg("actor_rollout_ref.actor.use_kl_loss", "False", "the platform's PPO: KL in the reward, not the loss"),
        Arg("actor_rollout_ref.rollout.name", "vllm", "engine"),
        Arg("actor_rollout_ref.rollout.temperature", _num(ppo["temperature"]), "PPORunConfig.temperature"),
        Arg("actor_rollout_ref.rollout.tensor_model_parallel_size", "1", "engine"),
        Arg("actor_rollout_ref.rollout.gpu_memory_utilization", "0.4", "engine"),
        Arg("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env"),
        Arg("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env"),
        Arg("critic.model.path", '"$POLICY"', "env POLICY"),
        Arg("critic.optim.lr", _num(ppo["learning_rate"]), "PPORunConfig.learning_rate (policy and value model)"),
        Arg("critic.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env MICRO_BATCH_SIZE"),
        Arg("critic.cliprange_value", _num(ppo["cliprange_value"]), "PPORunConfig.cliprange_value"),
        Arg("reward_model.enable", "True", "model-based reward"),
        Arg("reward_model.model.path", '"$REWARD_MODEL"', "env REWARD_MODEL"),
        Arg("reward_model.use_reward_loop", "True", "engine: the RM served by vLLM"),
        Arg("reward_model.rollout.name", "vllm", "engine"),
        Arg("reward_model.rollout.tensor_model_parallel_size", "1", "engine"),
        Arg("reward_model.rollout.gpu_memory_utilization", "0.2", "engine"),
        Arg("reward_model.rollout.prompt_length", str(prompt_len + response_len), "the RM reads prompt + response"),
        Arg("reward_model.rollout.response_length", str(response_len), "PPORunConfig.response_length"),
        *kl,
        Arg("algorithm.gamma", _num(ppo["gamma"]), "PPORunConfig.gamma"),
        Arg("algorithm.lam", _num(ppo["lam"]), "PPORunConfig.lam"),
        Arg("trainer.critic_warmup", "0", "engine"),
        Arg("trainer.logger", "'[\"console\"]'", "engine"),
        Arg("trainer.project_name", shlex.quote(f"rlhf-platform-{context['project']['slug']}"), "project"),
        Arg("trainer.experiment_name", "ppo", ""),
        Arg("trainer.val_before_train", "False", "a model-based reward: verl validates rule-based rewards only"),
        Arg("trainer.test_freq", "-1", "as above"),
        Arg("trainer.save_freq", "-1", "engine: save at the end"),
        Arg("trainer.nnodes", '"$NNODES"', "env NNODES"),
        Arg("trainer.n_gpus_per_node", '"$GPUS_PER_NODE"', "env GPUS_PER_NODE"),
        Arg("trainer.total_epochs", '"$EPOCHS"', "PPORunConfig.total_episodes / prompts"),
        Arg("trainer.default_local_dir", '"$OUTPUT_DIR"', "env OUTPUT_DIR"),
    ]
    text = _script(
        f"PPO with verl {VERL_VERSION} (Ray, FSDP, vLLM) on data/train.parquet, rewarded by a reward model\n"
        "(model-based reward: reward_model.enable=True). On the Ray head:\n"
        "REWARD_MODEL=/path/to/rm bash run_ppo.sh [more Hydra overrides]. See README.md.",
        env, "python3 -m verl.trainer.main_ppo", args, "hydra",
    )  # fmt: skip
    check = ': "${REWARD_MODEL:?set REWARD_MODEL to a reward model folder (see README.md)}"\n'
    text = text.replace("\npython3 -m verl.trainer.main_ppo", "\n" + check + "python3 -m verl.trainer.main_ppo", 1)
    _write_script(out / "run_ppo.sh", text)
    files = [f"{folder}/{split}.parquet" for folder in ("data", "reward_model") for split in (TRAIN, TEST)]
    return {"counts": counts, "margin": margin, "scripts": {"run_ppo.sh": args}, "env": {"run_ppo.sh": env},
            "files": [*files, "run_ppo.sh"]}  # fmt: skip


# --- the bundle ----------------------------------------------------------------------------------------------------


def _has_margin(work: Path) -> bool:
    for split in (TRAIN, TEST):
        path = work / f"{split}.jsonl"
        if path.exists() and path.stat().st_size:
            with path.open("rb") as handle:
                return "margin" in orjson.loads(handle.readline())
    return False


def _data_source(context: dict[str, Any]) -> str:
    return f"rlhf-platform/{context['project']['slug']}"


def write_bundle(
    engine: str, *, work: Path, out: Path, meta: dict[str, Any], hyper: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Turn the JSONL export in ``work`` (train.jsonl, test.jsonl with the full columns) into ``engine``'s bundle in
    ``out``. Returns ({file: sha256}, the bundle's facts for export_meta.json)."""
    if engine not in BUNDLE_FORMATS:
        raise ValueError(f"Unknown bundle {engine!r}; use one of {', '.join(BUNDLE_FORMATS)}.")
    hyper = hyper or platform_defaults()
    build = _openrlhf if engine == OPENRLHF else _verl
    facts = build(work, out, meta, hyper)
    (out / "README.md").write_text(bundle_readme(engine, facts, meta, hyper), encoding="utf-8")
    files = {name: file_sha256(out / name) for name in sorted([*facts["files"], "README.md"])}
    version, commit = (OPENRLHF_VERSION, OPENRLHF_COMMIT) if engine == OPENRLHF else (VERL_VERSION, VERL_COMMIT)
    sources = OPENRLHF_SOURCES if engine == OPENRLHF else VERL_SOURCES
    info = {
        "engine": engine, "version": version, "commit": commit, "sources": list(sources),
        "counts": facts["counts"], "margin": facts["margin"], "default_policy": DEFAULT_POLICY,
        "platform_defaults": hyper, "scripts": sorted(facts["scripts"]),
    }  # fmt: skip
    return files, info


# --- README --------------------------------------------------------------------------------------------------------


def _table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows])


def _mapped(scripts: dict[str, list[Arg]]) -> list[tuple[str, ...]]:
    rows = []
    for script, args in scripts.items():
        for arg in args:
            if arg.source.startswith(("RewardModelConfig", "PPORunConfig")):
                rows.append((arg.source, f"`{arg.name}" + (f" {arg.value}`" if arg.value else "`"), script))
    return rows


def bundle_readme(engine: str, facts: dict[str, Any], meta: dict[str, Any], hyper: dict[str, dict[str, Any]]) -> str:
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
    mapping = _table(_mapped(facts["scripts"]), ("platform default", "engine setting", "script"))
    env = _table(env_rows, ("variable", "default", "meaning", "script"))
    values = {"provenance": provenance, "env": env, "mapping": mapping, "not_mapped": not_mapped,
              "policy": DEFAULT_POLICY}  # fmt: skip
    if engine == OPENRLHF:
        return Path(README_TEMPLATE.format(engine=OPENRLHF)).read_text(encoding="utf-8").format(
            **values, version=OPENRLHF_VERSION, commit=OPENRLHF_COMMIT,
            margin="and `margin` (a float: the export's `--margin rank-diff`; `train_rm.sh` passes "
                   "`--model.margin_loss_enable`) " if facts["margin"] else "",
            sources="\n".join(f"- `{path}`" for path in OPENRLHF_SOURCES),
        )  # fmt: skip
    return Path(README_TEMPLATE.format(engine=VERL)).read_text(encoding="utf-8").format(
        **values, version=VERL_VERSION, commit=VERL_COMMIT,
        margin=", `margin` (float64)" if facts["margin"] else "",
        val="data/test.parquet" if counts["test_prompts"] else "data/train.parquet (no held-out prompts)",
        sources="\n".join(f"- `{path}`" for path in VERL_SOURCES),
    )  # fmt: skip
