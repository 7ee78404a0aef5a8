"""Re-score saved PPO policies on more held-out prompts than a bench/ppo.py run uses, with either sampler.

bench/ppo.py's held-out figure comes from a few prompts (16 until 2026-12-04, 32 since), and its samples use nucleus
sampling with a repetition penalty (readable text), while PPO's rollouts, and so its KL, sample the whole tempered
distribution. This script takes finished policies (bench/ppo.py's `<workdir>/ppo`) and the reference, samples
--samples responses per prompt for --prompts held-out prompts (the first single-turn dev prompts under the same
64-token limit as bench/ppo.py, labels never read) with both samplers, scores them with both reward models, and
prints, per policy and sampler, the gain in units of the reference's std with its standard error (over prompts,
paired with the reference's samples of the same prompt). Same seed for every model: the same prompts and draws.

The last line of stdout is one JSON object: {"runs": [{"model", "sampler", "gain_std", "se", "second_gain_std",
"ref_std"}, ...], "prompts", "samples", "eval_s"}.

Examples:
    .venv/bin/python bench/ppo_reeval.py --reward-model /tmp/ppo14/rm --second-reward-model /tmp/ppo14/rm2 \\
        /tmp/ppo14/ppo /tmp/ppo15/ppo
    .venv/bin/python bench/ppo_reeval.py --prompts 8 --samples 2 --reward-model RM --second-reward-model RM2 RUN/ppo
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ppo import HH_DEV, short_prompts  # noqa: E402 - bench/ppo.py sets the offline environment and the repo path

from rlhf.training.generation import REPETITION_PENALTY, TOP_P  # noqa: E402 - the held-out samples' settings

# (top_p, repetition_penalty) of each sampler; the temperature is --temperature
SAMPLERS = {"readable": (TOP_P, REPETITION_PENALTY), "rollout": (1.0, 1.0)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ppo_reeval.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("policies", nargs="+", type=Path, help="Saved PPO policies (bench/ppo.py's <workdir>/ppo).")
    add("--reward-model", type=Path, required=True, help="The reward model PPO optimised.")
    add("--second-reward-model", type=Path, required=True, help="The second opinion.")
    add("--reference", default="default", help="The reference policy (default: SmolLM2-135M-Instruct).")
    add("--prompts", type=int, default=64, help="Held-out prompts.")
    add("--samples", type=int, default=4, help="Samples per prompt and model.")
    add("--response-length", type=int, default=32, help="Maximum new tokens (as in the PPO run).")
    add("--temperature", type=float, default=0.7, help="Sampling temperature (as in the PPO run).")
    add("--sampler", choices=[*SAMPLERS, "both"], default="both", help="readable = top-p 0.9 + repetition 1.1.")
    add("--threads", type=int, default=2, help="torch threads.")
    add("--seed", type=int, default=1)
    return parser.parse_args(argv)


def gain(after: list[float], before: list[float], per_prompt: int) -> tuple[float, float, float]:
    """(gain in units of the reference's std as run_ppo reports it, its standard error over prompts, the std)."""
    import numpy as np

    from rlhf.training.ppo import sample_metrics

    metrics = sample_metrics(before, after)
    std = metrics["ppo/eval_reward_std"] or 1.0
    by_prompt = np.reshape(after, (-1, per_prompt)).mean(1) - np.reshape(before, (-1, per_prompt)).mean(1)
    se = float(by_prompt.std(ddof=1) / np.sqrt(len(by_prompt))) if len(by_prompt) > 1 else float("nan")
    return metrics["ppo/eval_reward_gain_std"], se / std, metrics["ppo/eval_reward_std"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlhf.training.generation import encode_prompts, sample_ids
    from rlhf.training.models import resolve_model
    from rlhf.training.ppo import reward_scorer, score_responses

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    reference = resolve_model(args.reference)
    tokenizer = AutoTokenizer.from_pretrained(reference)
    prompts = short_prompts(HH_DEV, tokenizer, 64)[: args.prompts]
    ids = encode_prompts(tokenizer, prompts, 64)
    known = list(zip(ids, prompts, strict=True))
    scorers = [reward_scorer(path, tokenizer, known) for path in (args.reward_model, args.second_reward_model)]
    repeated = [q for q in ids for _ in range(args.samples)]
    samplers = list(SAMPLERS) if args.sampler == "both" else [args.sampler]
    models = {"reference": reference, **{str(p): str(p) for p in args.policies}}
    scores: dict[tuple[str, str], list[list[float]]] = {}
    with tqdm(total=len(models) * len(samplers), desc="sample and score", unit="set", file=sys.stderr) as bar:
        for name, path in models.items():
            model = AutoModelForCausalLM.from_pretrained(path)
            model.config.pad_token_id = tokenizer.pad_token_id
            for sampler in samplers:
                top_p, repetition = SAMPLERS[sampler]
                torch.manual_seed(args.seed)
                responses = sample_ids(
                    model, tokenizer, repeated, args.response_length, args.temperature,
                    top_p=top_p, repetition_penalty=repetition, batch_size=32,
                )  # fmt: skip
                scores[name, sampler] = [
                    score_responses(scorer, repeated, responses, tokenizer.pad_token_id) for scorer in scorers
                ]
                bar.update()
    runs = []
    for sampler in samplers:
        before = scores["reference", sampler]
        for name in models:
            if name == "reference":
                continue
            after = scores[name, sampler]
            value, se, std = gain(after[0], before[0], args.samples)
            second = gain(after[1], before[1], args.samples)[0]
            row = {"model": name, "sampler": sampler, "gain_std": round(value, 3), "se": round(se, 3)}
            runs.append(row | {"second_gain_std": round(second, 3), "ref_std": round(std, 3)})
            print(f"{name} ({sampler}): {value:+.3f} ± {se:.3f} sd, second reward model {second:+.3f}", flush=True)
    eval_s = round(time.monotonic() - started, 1)
    print(json.dumps({"runs": runs, "prompts": len(prompts), "samples": args.samples, "eval_s": eval_s}))


if __name__ == "__main__":
    main()
