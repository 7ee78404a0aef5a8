"""The benchmark scripts are run by hand, not by the suite: check at least that every name they import from the
platform exists (a refactor once moved `print_progress` and broke two of them silently), that --help works, and
that the reward-model benchmark's whole path (fresh database, import, export, training, evaluation) runs on a few
real pairs. No figure is measured here; tests/annotation/test_imports.py imports the whole HH train file."""

import ast
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "bench").glob("*.py")) + sorted((REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_platform_name_a_script_imports_exists(script, db):
    missing = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("rlhf", "annotation"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{node.module}.{alias.name}")
    assert missing == []


@pytest.mark.parametrize("name", ["ppo.py", "reward_model.py", "ppo_tiny.py"])
def test_training_benchmarks_print_their_help(name):
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / name), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout or "examples:" in result.stdout


def test_the_ppo_benchmarks_defaults_are_the_platforms_smollm2_cpu_recipe(tmp_path):
    # What bench/ppo.py measures by default is what a user gets with `recipe: smollm2-cpu` (form, API, run_ppo).
    from rlhf.training.ppo_config import PPO_RECIPES

    spec = importlib.util.spec_from_file_location("bench_ppo", REPO / "bench" / "ppo.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.parse_args([])
    files = {"train": tmp_path / "train.jsonl", "held_out": tmp_path / "held_out.jsonl"}
    cfg = bench.ppo_config(args, files, tmp_path / "rm", tmp_path / "rm2", [], tmp_path / "out", args.episodes)
    recipe = PPO_RECIPES["smollm2-cpu"]
    assert {key: getattr(cfg, key) for key in recipe} == recipe


@pytest.mark.slow
def test_reward_model_benchmark_runs_end_to_end_on_a_few_real_pairs(tmp_path):
    # The whole path of the benchmark (a fresh database, import_prompts of the HH file, export_preferences, training,
    # the length-aware evaluation) on 40 + 20 pairs at 64 tokens: what broke it before was in that path, not in
    # the training itself.
    cmd = [sys.executable, str(REPO / "bench" / "reward_model.py"), "--workdir", str(tmp_path / "bench")]
    cmd += ["--limit", "40", "--dev-limit", "20", "--max-length", "64"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["pairs_seen"] == 40 and last["base_model"] == "minilm"
    assert 0 <= last["length_balanced_accuracy"] <= 1 and last["accuracy"] is not None
