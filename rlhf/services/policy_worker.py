"""The worker's side of policy runs: call the stage's training function with the run's config and the recorder, and
collect its final metrics (the per-step history is in RunMetric already, so metrics.json's `history` is left out).

Imported by the worker only when it trains a policy run: the training modules (torch, TRL) stay out of the web process.
"""

import json
from pathlib import Path
from typing import Any

from rlhf.models import TrainingRun
from rlhf.services.worker import RunRecorder
from rlhf.training.ppo_config import ChainConfig, DPORunConfig, GRPORunConfig, PPORunConfig, SFTRunConfig

Kind = TrainingRun.Kind


def _metrics(path: Path) -> dict[str, Any]:
    file = path / "metrics.json"
    data = json.loads(file.read_text()) if file.is_file() else {}
    return {k: v for k, v in data.items() if k != "history"}


def _chain(run: TrainingRun, recorder: RunRecorder) -> tuple[Path, dict]:
    from rlhf.training.chain import run_default_chain  # noqa: PLC0415

    dirs = run_default_chain(ChainConfig.from_dict(run.config), progress=recorder)
    metrics: dict[str, Any] = {}
    for stage in ("sft", "reward", "ppo"):  # the PPO stage's figures and warnings last, on top
        metrics |= _metrics(dirs[stage])
    metrics["chain/dirs"] = {name: str(path) for name, path in dirs.items()}
    return Path(run.config["output_dir"]), metrics


def policy_train(run: TrainingRun, recorder: RunRecorder) -> tuple[Path, dict]:
    """Train a SFT / PPO / DPO / GRPO / chain run; returns (output dir, final metrics)."""
    if run.kind == Kind.CHAIN:
        return _chain(run, recorder)
    if run.kind == Kind.PPO:
        from rlhf.training.ppo import run_ppo as train  # noqa: PLC0415

        cfg: Any = PPORunConfig.from_dict(run.config)
    elif run.kind == Kind.SFT:
        from rlhf.training.sft import run_sft as train  # noqa: PLC0415

        cfg = SFTRunConfig.from_dict(run.config)
    elif run.kind == Kind.DPO:
        from rlhf.training.dpo import run_dpo as train  # noqa: PLC0415

        cfg = DPORunConfig.from_dict(run.config)
    elif run.kind == Kind.GRPO:
        from rlhf.training.grpo import run_grpo as train  # noqa: PLC0415

        cfg = GRPORunConfig.from_dict(run.config)
    else:
        raise ValueError(f"Run {run.pk}: no training function for kind {run.kind!r}.")
    output_dir = Path(train(cfg, progress=recorder))
    return output_dir, _metrics(output_dir)
