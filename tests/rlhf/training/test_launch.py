"""Launchers: the shipped accelerate configs, and a stage trained under `accelerate launch` in a subprocess (two CPU
processes, world size 2), cancelled (the whole process group goes) or failing (its error comes back)."""

import json
import os
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.utils import DistributedType

from rlhf.training.config import RewardModelConfig
from rlhf.training.launch import (
    CONFIGS_DIR,
    LaunchError,
    accelerate_config_path,
    launch_stage,
    launcher_parse,
    shipped_configs,
)
from rlhf.training.progress import ProgressEvent, TrainingCancelled

from .conftest import pair_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = {
    "cpu_single": (DistributedType.NO, 1, True),
    "cpu_2proc": (DistributedType.MULTI_GPU, 2, False),
    "gpu_ddp": (DistributedType.MULTI_GPU, 2, False),
    "deepspeed_zero2": (DistributedType.DEEPSPEED, 2, False),
    "deepspeed_zero3": (DistributedType.DEEPSPEED, 2, False),
    "fsdp": (DistributedType.FSDP, 2, False),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_config_loads_with_accelerates_own_classes(name):
    path = CONFIGS_DIR / f"{name}.yaml"
    config = load_config_from_file(str(path))  # what `accelerate launch --config_file` does
    assert isinstance(config, ClusterConfig)
    assert ClusterConfig.from_yaml_file(str(path)) == config  # no key accelerate does not know
    assert (config.distributed_type, config.num_processes, config.use_cpu) == SHIPPED[name]
    assert config.num_machines == 1 and config.machine_rank == 0
    text = path.read_text()
    assert text.startswith("#")  # each says what it is for (and, for GPUs, how to go multi-node)
    if config.distributed_type != DistributedType.NO and name != "cpu_2proc":
        assert "machine_rank" in text.split("compute_environment")[0] and "main_process_ip" in text
    if config.distributed_type == DistributedType.DEEPSPEED:
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


def test_launcher_values():
    assert set(shipped_configs()) == set(SHIPPED)
    assert launcher_parse("inprocess") == ("inprocess", "")
    assert launcher_parse(" accelerate:gpu_ddp ") == ("accelerate", "gpu_ddp")
    for bad in ("accelerate", "accelerate:", "deepspeed:zero2", "local"):
        with pytest.raises(ValueError, match="launcher must be"):
            launcher_parse(bad)
    assert (
        accelerate_config_path("cpu_2proc")
        == accelerate_config_path("cpu_2proc.yaml")
        == CONFIGS_DIR / "cpu_2proc.yaml"
    )
    with pytest.raises(FileNotFoundError, match="use one of cpu_2proc, cpu_single"):
        accelerate_config_path("tpu_pod")
    with pytest.raises(ValueError, match="launcher must be"):
        RewardModelConfig(launcher="mpirun")


def _run_config(tmp_path: Path, **overrides) -> tuple[RewardModelConfig, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", pair_rows(24, seed=1))
    test = write_jsonl(tmp_path / "test.jsonl", pair_rows(10, seed=2))
    values = dict(train_file=str(train), eval_file=str(test), base_model="tiny", output_dir=str(tmp_path / "out"),
                  max_length=64, per_device_train_batch_size=4, max_steps=4, logging_steps=1, learning_rate=1e-3,
                  tiny_vocab_size=500)  # fmt: skip
    cfg = RewardModelConfig(**(values | overrides))
    path = tmp_path / "launch_config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return cfg, path


@pytest.mark.slow
def test_reward_model_trains_in_two_processes_with_world_size_2_and_its_model_scores(tmp_path):
    cfg, config_file = _run_config(tmp_path)
    events: list[ProgressEvent] = []
    lines: list[str] = []
    out = launch_stage(
        module="rlhf.training.reward_model", accelerate_config=accelerate_config_path("cpu_2proc"),
        config_file=config_file, output_dir=cfg.output_dir, progress=events.append, log=lines.append,
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/world_size"] == 2 and metrics["train/steps"] == 4
    assert 0.0 <= metrics["eval/accuracy"] <= 1.0 and metrics["eval/pairs"] == 10
    assert [e.stage for e in events].count("done") == 1  # only the main process reports
    assert any("train/loss" in e.metrics for e in events)
    assert any("[rank1]" in line for line in lines) or sum("Filtering train" in line for line in lines) >= 2

    from rlhf.training.scoring import score_texts

    row = pair_rows(1, seed=5)[0]
    scores = score_texts(out, [row["prompt"]] * 2, [row["chosen"], row["rejected"]], max_length=64)
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores) and scores[0] != scores[1]


@pytest.mark.slow
def test_a_cancel_stops_the_whole_process_group_and_saves_nothing(tmp_path):
    cfg, config_file = _run_config(tmp_path, max_steps=400, logging_steps=1)
    seen: list[int] = []

    def cancel_when_training(event: ProgressEvent) -> None:
        if event.stage == "train" and event.step >= 1:
            raise TrainingCancelled("cancelled by the test")

    def log(line: str) -> None:
        if line.startswith("launch:"):
            seen.append(1)

    with pytest.raises(TrainingCancelled):
        launch_stage(
            module="rlhf.training.reward_model", accelerate_config=accelerate_config_path("cpu_2proc"),
            config_file=config_file, output_dir=cfg.output_dir, progress=cancel_when_training, log=log,
            env={"RLHF_TEST_MARK": str(tmp_path)},
        )  # fmt: skip
    assert seen
    assert not (Path(cfg.output_dir) / "metrics.json").exists()
    assert _processes_with_env("RLHF_TEST_MARK", str(tmp_path)) == []  # accelerate and both ranks are gone


def _processes_with_env(name: str, value: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{name}={value}".encode() in env:
            found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid() and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return (Path(f"/proc/{pid}/stat").read_text().split()[2]) != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_a_failing_stage_raises_with_its_error(tmp_path):
    cfg, config_file = _run_config(tmp_path, train_file=str(tmp_path / "missing.jsonl"))
    with pytest.raises(LaunchError, match=r"(?s)exited with status [1-9].*missing\.jsonl"):
        launch_stage(
            module="rlhf.training.reward_model", accelerate_config=accelerate_config_path("cpu_single"),
            config_file=config_file, output_dir=cfg.output_dir, progress=None, log=lambda line: None,
        )  # fmt: skip


def test_a_launched_stage_dies_with_a_worker_killed_outright(tmp_path):
    """SIGKILL leaves the worker no chance to stop the group: the launched process gets SIGTERM from the kernel
    (PR_SET_PDEATHSIG), and accelerate stops its ranks on SIGTERM."""
    import subprocess
    import sys
    import time

    code = (
        "import subprocess, sys, time; sys.path.insert(0, sys.argv[1]);"
        "from rlhf.training.launch import _die_with_parent;"
        "child = subprocess.Popen(['sleep', '120'], start_new_session=True, preexec_fn=_die_with_parent);"
        "print(child.pid, flush=True); time.sleep(120)"
    )
    worker = subprocess.Popen([sys.executable, "-c", code, str(ROOT)], stdout=subprocess.PIPE, text=True)
    child = int(worker.stdout.readline())
    assert _alive(child)
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
