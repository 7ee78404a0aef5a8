"""The OpenRLHF bundle: reward-model pairs and PPO prompts as JSONL, train_rm.sh and train_ppo.sh, README.md.

Read in OpenRLHF's source at tag v0.11.0 (see the package docstring): the flags of openrlhf/cli/train_rm.py and
openrlhf/cli/train_ppo_ray.py, the keys of openrlhf/datasets/reward_dataset.py and prompts_dataset.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from annotation.exports.bundles.common import (
    DEFAULT_POLICY,
    README_TEMPLATE,
    Arg,
    JsonlRows,
    batch_plan,
    data_source,
    has_margin,
    num,
    prompts_of,
    read_split,
    readme_values,
    render_script,
    write_script,
)
from annotation.exports.split import TEST, TRAIN

VERSION, COMMIT = "0.11.0", "3c3be6234e0cb353e76bb8019947db9dfe99fca7"
SOURCES = (
    "openrlhf/cli/train_rm.py",
    "openrlhf/cli/train_ppo_ray.py",
    "openrlhf/datasets/reward_dataset.py",
    "openrlhf/datasets/prompts_dataset.py",
    "openrlhf/datasets/utils.py",
    "examples/scripts/train_rm.sh",
    "examples/scripts/train_ppo_ray_hybrid_engine.sh",
)


def build(work: Path, out: Path, context: dict[str, Any], hyper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    margin = has_margin(work)
    counts: dict[str, int] = {}
    source = data_source(context)
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
        Arg("--data.max_len", num(rm["max_length"]), "RewardModelConfig.max_length"),
        Arg("--train.max_epochs", str(max(1, math.ceil(rm["num_train_epochs"]))), "RewardModelConfig.num_train_epochs"),
        Arg("--train.micro_batch_size", '"$MICRO_BATCH_SIZE"', "RewardModelConfig.per_device_train_batch_size"),
        Arg("--train.batch_size", '"$BATCH_SIZE"', "RewardModelConfig.gradient_accumulation_steps x GPUs x micro"),
        Arg("--adam.lr", num(rm["learning_rate"]), "RewardModelConfig.learning_rate"),
        Arg("--lr_warmup_ratio", num(rm["warmup_ratio"]), "RewardModelConfig.warmup_ratio"),
        Arg("--adam.weight_decay", num(rm["weight_decay"]), "RewardModelConfig.weight_decay"),
        Arg("--train.seed", num(rm["seed"]), "RewardModelConfig.seed"),
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
    write_script(
        out / "train_rm.sh",
        render_script(
            f"Reward model with OpenRLHF {VERSION} (DeepSpeed), on data/rm_train.jsonl (held out: "
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
    kl = [Arg("--algo.kl.init_coef", num(ppo["kl_coef"]), "PPORunConfig.kl_coef"),
          Arg("--algo.kl.estimator", str(ppo["kl_estimator"]), "PPORunConfig.kl_estimator"),
          Arg("--algo.kl.horizon", num(ppo["kl_horizon"]), "PPORunConfig.kl_horizon")]  # fmt: skip
    if ppo["kl_target"] is not None:
        kl.append(Arg("--algo.kl.target", num(ppo["kl_target"]), "PPORunConfig.kl_target"))
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
            num(int(ppo["max_prompt_length"]) + int(ppo["response_length"])),
            "PPORunConfig.max_prompt_length + response_length",
        ),
        Arg("--rollout.max_new_tokens", num(ppo["response_length"]), "PPORunConfig.response_length"),
        Arg("--rollout.batch_size", '"$ROLLOUT_BATCH_SIZE"', "env ROLLOUT_BATCH_SIZE"),
        Arg("--rollout.temperature", num(ppo["temperature"]), "PPORunConfig.temperature"),
        Arg("--train.batch_size", '"$TRAIN_BATCH_SIZE"', "env TRAIN_BATCH_SIZE"),
        Arg("--train.micro_batch_size", '"$MICRO_BATCH_SIZE"', "PPORunConfig.per_device_train_batch_size"),
        Arg("--train.max_epochs", num(ppo["num_ppo_epochs"]), "PPORunConfig.num_ppo_epochs"),
        Arg("--train.num_episodes", '"$EPISODES"', "PPORunConfig.total_episodes / prompts"),
        Arg("--train.seed", num(ppo["seed"]), "PPORunConfig.seed"),
        Arg("--actor.adam.lr", num(ppo["learning_rate"]), "PPORunConfig.learning_rate"),
        Arg("--critic.adam.lr", num(ppo["learning_rate"]), "PPORunConfig.learning_rate (policy and value model)"),
        *kl,
        Arg("--actor.eps_clip", num(ppo["cliprange"]), "PPORunConfig.cliprange"),
        Arg("--critic.value_clip", num(ppo["cliprange_value"]), "PPORunConfig.cliprange_value"),
        Arg("--algo.advantage.estimator", "gae", "the platform's PPO: GAE with a value model"),
        Arg("--algo.advantage.gamma", num(ppo["gamma"]), "PPORunConfig.gamma"),
        Arg("--algo.advantage.lambd", num(ppo["lam"]), "PPORunConfig.lam"),
        Arg("--ds.zero_stage", "2", "engine"),
        Arg("--ds.param_dtype", "bf16", "engine"),
        Arg("--ds.attn_implementation", '"$ATTN_IMPLEMENTATION"', "env ATTN_IMPLEMENTATION"),
        Arg("--actor.gradient_checkpointing_enable", None, "engine"),
    ]
    write_script(
        out / "train_ppo.sh",
        render_script(
            f"PPO with OpenRLHF {VERSION} (Ray + vLLM hybrid engine) on data/prompts_train.jsonl, rewarded "
            "by the model train_rm.sh wrote.\nStart Ray first (ray start --head; workers: ray start --address "
            "HEAD:6379), then on the head: bash train_ppo.sh. See README.md.",
            ppo_env, "python3 -m openrlhf.cli.train_ppo_ray", ppo_args, "flags",
        ),
    )  # fmt: skip
    files = [f"data/{kind}_{split}.jsonl" for kind in ("rm", "prompts") for split in (TRAIN, TEST)]
    return {"counts": counts, "margin": margin, "scripts": {"train_rm.sh": rm_args, "train_ppo.sh": ppo_args},
            "env": {"train_rm.sh": rm_env, "train_ppo.sh": ppo_env},
            "files": [*files, "train_rm.sh", "train_ppo.sh"]}  # fmt: skip


def readme(facts: dict[str, Any], meta: dict[str, Any]) -> str:
    values = readme_values(facts, meta)
    return Path(README_TEMPLATE.format(engine="openrlhf")).read_text(encoding="utf-8").format(
            **values, version=VERSION, commit=COMMIT,
            margin="and `margin` (a float: the export's `--margin rank-diff`; `train_rm.sh` passes "
                   "`--model.margin_loss_enable`) " if facts["margin"] else "",
            sources="\n".join(f"- `{path}`" for path in SOURCES),
        )  # fmt: skip
