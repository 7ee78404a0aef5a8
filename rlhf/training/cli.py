"""The command line of every stage, TRL's script convention: `python -m rlhf.training.<stage> --config run.yaml`.

    python -m rlhf.training.reward_model --help          # every field of the stage's config, with its help text
    python -m rlhf.training.reward_model --config run.yaml --max_steps 5     # flags override the file

The file is YAML (JSON is YAML too) with the config's field names; a run's own config is what the worker hands to a
launched stage (`accelerate launch ... -m rlhf.training.<stage> --config <run dir>/launch_config.yaml`). No Django.
Progress goes to stdout: readable lines, or with RLHF_PROGRESS=json one `@rlhf-progress {...}` line per event for the
worker to read back. With several processes (accelerate launch) only the main process (RANK 0) reports; the last
line of the main process is the final metrics as JSON.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from rlhf.training.progress import ProgressCallback, ProgressEvent, event_line
from rlhf.training.registry import stage_get

PROGRESS_ENV = "RLHF_PROGRESS"


def is_main_process() -> bool:
    """RANK 0 (or no RANK: one process). torch.distributed.run / accelerate launch set RANK for every process."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def print_progress(event: ProgressEvent) -> None:
    if event.message:
        print(f"[{event.stage}] {event.message}", flush=True)


def json_progress(event: ProgressEvent) -> None:
    print(event_line(event), flush=True)


def progress_printer() -> ProgressCallback | None:
    if not is_main_process():
        return None
    return json_progress if os.environ.get(PROGRESS_ENV) == "json" else print_progress


def parse_config(kind: str, argv: list[str] | None = None) -> Any:
    """The stage's config from `--config file.yaml` and/or `--field value` flags (TRL's TrlParser: a flag for every
    dataclass field, its help text from the field's metadata)."""
    from trl import TrlParser

    stage = stage_get(kind)
    parser = TrlParser(stage.config, prog=f"python -m {stage.module}", description=f"{stage.label}: {stage.description}"
                       " Every field below can also be set in a YAML file passed with --config FILE.")  # fmt: skip
    (cfg,) = parser.parse_args_and_config(argv)
    return cfg


def final_metrics(out: Path) -> dict[str, Any]:
    file = Path(out) / "metrics.json"
    data = json.loads(file.read_text()) if file.is_file() else {}
    return {k: v for k, v in data.items() if k != "history"}


def stage_main(kind: str, argv: list[str] | None = None) -> Path:
    """Parse the stage's config, train it here (this process, or each process `accelerate launch` started) and print
    its final metrics (main process only); returns the output dir."""
    cfg = parse_config(kind, sys.argv[1:] if argv is None else argv)
    out = stage_get(kind).train(cfg, progress=progress_printer())
    if is_main_process():
        print(json.dumps(final_metrics(out), default=str), flush=True)
    return out
