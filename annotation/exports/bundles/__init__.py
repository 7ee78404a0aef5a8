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

from pathlib import Path
from typing import Any

from annotation.exports.bundles import openrlhf, verl
from annotation.exports.bundles.common import DEFAULT_POLICY, batch_plan, platform_defaults
from annotation.exports.writers import file_sha256

OPENRLHF, VERL = "openrlhf", "verl"
ENGINES = {OPENRLHF: openrlhf, VERL: verl}
BUNDLE_FORMATS: tuple[str, ...] = tuple(ENGINES)
OPENRLHF_VERSION, OPENRLHF_COMMIT, OPENRLHF_SOURCES = openrlhf.VERSION, openrlhf.COMMIT, openrlhf.SOURCES
VERL_VERSION, VERL_COMMIT, VERL_SOURCES = verl.VERSION, verl.COMMIT, verl.SOURCES

__all__ = [
    "BUNDLE_FORMATS",
    "DEFAULT_POLICY",
    "OPENRLHF",
    "OPENRLHF_COMMIT",
    "OPENRLHF_SOURCES",
    "OPENRLHF_VERSION",
    "VERL",
    "VERL_COMMIT",
    "VERL_SOURCES",
    "VERL_VERSION",
    "batch_plan",
    "platform_defaults",
    "write_bundle",
]


def write_bundle(
    engine: str, *, work: Path, out: Path, meta: dict[str, Any], hyper: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Turn the JSONL export in ``work`` (train.jsonl, test.jsonl with the full columns) into ``engine``'s bundle in
    ``out``. Returns ({file: sha256}, the bundle's facts for export_meta.json)."""
    if engine not in BUNDLE_FORMATS:
        raise ValueError(f"Unknown bundle {engine!r}; use one of {', '.join(BUNDLE_FORMATS)}.")
    hyper = hyper or platform_defaults()
    module = ENGINES[engine]
    facts = module.build(work, out, meta, hyper)
    (out / "README.md").write_text(module.readme(facts, meta), encoding="utf-8")
    files = {name: file_sha256(out / name) for name in sorted([*facts["files"], "README.md"])}
    info = {
        "engine": engine, "version": module.VERSION, "commit": module.COMMIT, "sources": list(module.SOURCES),
        "counts": facts["counts"], "margin": facts["margin"], "default_policy": DEFAULT_POLICY,
        "platform_defaults": hyper, "scripts": sorted(facts["scripts"]),
    }  # fmt: skip
    return files, info
