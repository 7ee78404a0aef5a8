"""The benchmark scripts are run by hand, not by the suite: check at least that every name they import from the
platform exists (a refactor once moved `print_progress` and broke two of them silently), and that --help works."""

import ast
import importlib
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
