"""The verl bundle: RL prompts as Parquet in verl's RL dataset schema, reward-model pairs as Parquet, run_ppo.sh with a
model-based reward, README.md.

Read in verl's source at tag v0.7.0 (see the package docstring): the columns of verl/utils/dataset/rl_dataset.py and
examples/data_preprocess/*.py, the config keys of verl/trainer/config/_generated_ppo_trainer.yaml.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

import pyarrow as pa

from annotation.exports.bundles.common import (
    DEFAULT_POLICY,
    MESSAGES,
    README_TEMPLATE,
    Arg,
    ParquetRows,
    batch_plan,
    data_source,
    has_margin,
    num,
    prompts_of,
    read_split,
    readme_values,
    render_script,
    rm_schema,
    write_script,
)
from annotation.exports.split import TEST, TRAIN

VERSION, COMMIT = "0.7.0", "f9c855f7cf04d603c9546bc01776c74806a879c1"
SOURCES = (
    "verl/utils/dataset/rl_dataset.py",
    "examples/data_preprocess/full_hh_rlhf.py",
    "examples/data_preprocess/gsm8k.py",
    "verl/trainer/config/_generated_ppo_trainer.yaml",
    "verl/trainer/config/reward_model/dp_reward_loop.yaml",
    "examples/ppo_trainer/run_qwen2-7b_rm.sh",
    "verl/experimental/reward_loop/reward_loop.py",
    "verl/trainer/ppo/ray_trainer.py",
)
ABILITY = "alignment"  # as verl's full_hh_rlhf.py labels preference data
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


VERL_KL = {"k1": "kl", "k3": "low_var_kl"}  # the platform's estimators -> verl's algorithm.kl_penalty


def build(work: Path, out: Path, context: dict[str, Any], hyper: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "reward_model").mkdir(parents=True, exist_ok=True)
    margin = has_margin(work)
    counts: dict[str, int] = {}
    source = data_source(context)
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
          Arg("algorithm.kl_ctrl.kl_coef", num(ppo["kl_coef"]), "PPORunConfig.kl_coef"),
          Arg("algorithm.kl_ctrl.horizon", num(ppo["kl_horizon"]), "PPORunConfig.kl_horizon")]  # fmt: skip
    if ppo["kl_target"] is None:
        kl.append(Arg("algorithm.kl_ctrl.type", "fixed", "PPORunConfig.kl_target unset"))
    else:
        kl += [Arg("algorithm.kl_ctrl.type", "adaptive", "PPORunConfig.kl_target set"),
               Arg("algorithm.kl_ctrl.target_kl", num(ppo["kl_target"]), "PPORunConfig.kl_target")]  # fmt: skip
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
        Arg("data.truncation", "left", "the platform keeps a prompt's end (verl 0.7 drops long prompts, above)"),
        Arg("data.return_raw_chat", "True", "engine: the reward model re-renders the chat"),
        Arg("data.seed", num(ppo["seed"]), "PPORunConfig.seed"),
        Arg("actor_rollout_ref.model.path", '"$POLICY"', "env POLICY"),
        Arg("actor_rollout_ref.model.enable_gradient_checkpointing", "True", "engine"),
        Arg("actor_rollout_ref.actor.optim.lr", num(ppo["learning_rate"]), "PPORunConfig.learning_rate"),
        Arg("actor_rollout_ref.actor.ppo_mini_batch_size", '"$MINI_BATCH_SIZE"', "env MINI_BATCH_SIZE"),
        Arg("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env MICRO_BATCH_SIZE"),
        Arg("actor_rollout_ref.actor.ppo_epochs", num(ppo["num_ppo_epochs"]), "PPORunConfig.num_ppo_epochs"),
        Arg("actor_rollout_ref.actor.clip_ratio", num(ppo["cliprange"]), "PPORunConfig.cliprange"),
        Arg("actor_rollout_ref.actor.use_kl_loss", "False", "the platform's PPO: KL in the reward, not the loss"),
        Arg("actor_rollout_ref.rollout.name", "vllm", "engine"),
        Arg("actor_rollout_ref.rollout.temperature", num(ppo["temperature"]), "PPORunConfig.temperature"),
        Arg("actor_rollout_ref.rollout.tensor_model_parallel_size", "1", "engine"),
        Arg("actor_rollout_ref.rollout.gpu_memory_utilization", "0.4", "engine"),
        Arg("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env"),
        Arg("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env"),
        Arg("critic.model.path", '"$POLICY"', "env POLICY"),
        Arg("critic.optim.lr", num(ppo["learning_rate"]), "PPORunConfig.learning_rate (policy and value model)"),
        Arg("critic.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"', "env MICRO_BATCH_SIZE"),
        Arg("critic.cliprange_value", num(ppo["cliprange_value"]), "PPORunConfig.cliprange_value"),
        Arg("reward_model.enable", "True", "model-based reward"),
        Arg("reward_model.model.path", '"$REWARD_MODEL"', "env REWARD_MODEL"),
        Arg("reward_model.use_reward_loop", "True", "engine: the RM served by vLLM"),
        Arg("reward_model.rollout.name", "vllm", "engine"),
        Arg("reward_model.rollout.tensor_model_parallel_size", "1", "engine"),
        Arg("reward_model.rollout.gpu_memory_utilization", "0.2", "engine"),
        Arg("reward_model.rollout.prompt_length", str(prompt_len + response_len), "the RM reads prompt + response"),
        Arg("reward_model.rollout.response_length", str(response_len), "PPORunConfig.response_length"),
        *kl,
        Arg("algorithm.gamma", num(ppo["gamma"]), "PPORunConfig.gamma"),
        Arg("algorithm.lam", num(ppo["lam"]), "PPORunConfig.lam"),
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
    text = render_script(
        f"PPO with verl {VERSION} (Ray, FSDP, vLLM) on data/train.parquet, rewarded by a reward model\n"
        "(model-based reward: reward_model.enable=True). On the Ray head:\n"
        "REWARD_MODEL=/path/to/rm bash run_ppo.sh [more Hydra overrides]. See README.md.",
        env, "python3 -m verl.trainer.main_ppo", args, "hydra",
    )  # fmt: skip
    check = ': "${REWARD_MODEL:?set REWARD_MODEL to a reward model folder (see README.md)}"\n'
    text = text.replace("\npython3 -m verl.trainer.main_ppo", "\n" + check + "python3 -m verl.trainer.main_ppo", 1)
    write_script(out / "run_ppo.sh", text)
    files = [f"{folder}/{split}.parquet" for folder in ("data", "reward_model") for split in (TRAIN, TEST)]
    return {"counts": counts, "margin": margin, "scripts": {"run_ppo.sh": args}, "env": {"run_ppo.sh": env},
            "files": [*files, "run_ppo.sh"]}  # fmt: skip


def readme(facts: dict[str, Any], meta: dict[str, Any]) -> str:
    values, counts = readme_values(facts, meta), facts["counts"]
    return Path(README_TEMPLATE.format(engine="verl")).read_text(encoding="utf-8").format(
        **values, version=VERSION, commit=COMMIT,
        margin=", `margin` (float64)" if facts["margin"] else "",
        val="data/test.parquet" if counts["test_prompts"] else "data/train.parquet (no held-out prompts)",
        sources="\n".join(f"- `{path}`" for path in SOURCES),
    )  # fmt: skip
