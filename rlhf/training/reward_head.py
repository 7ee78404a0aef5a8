"""Reward model = a frozen pretrained trunk + a trained linear head, fitted on cached features. Plain Python.

Why not fine-tune: on the 2-core CPU this platform targets, one SmolLM2-135M training step costs 5-6 s per pair, so
one epoch over 3,843 HH pairs takes 5+ hours. Here every text goes through the (frozen, optionally shortened) trunk
exactly once, the features its head reads (the last token's hidden state) are cached on disk (keyed by the token
ids and the trunk), and the head is a Bradley-Terry logistic regression on feature differences (scikit-learn),
which takes seconds and can be refitted with other settings for free: model selection costs no extra forward passes.

The saved model is an ordinary `AutoModelForSequenceClassification` (e.g. `LlamaForSequenceClassification`): the
first `trunk_layers` decoder layers, the final norm, and the fitted weights in its `score` layer, reading the
reward at the last non-pad token exactly as Hugging Face (and TRL's PPO `get_reward`) does. So it scores, evaluates
and serves as a PPO reward model like any fine-tuned one.

Length bias (`length_debias`): human raters prefer longer answers often enough that a reward model learns "longer
is better" before it learns anything else. The counters (what they did on HH data: docs/benchmarks.md):
- "balanced": pairs are weighted so that chosen-longer and chosen-shorter pairs carry equal total weight, so
  length alone cannot lower the loss.
- "residual": the head is fitted with an extra, separate length term (log character-length difference) that is
  dropped when the model is saved: the length head absorbs the length preference and the content head keeps the
  rest, as ODIN (Chen et al., 2024, "ODIN: Disentangled Reward Mitigates Hacking in RLHF") separates a length head
  from a quality head and keeps only the quality head for RL. (Tested on synthetic data; not yet measured on HH.)
- "both" applies the two; "none" fits the plain head.
- "decorrelate" (any method, after training; `decorrelate_head`): the head is projected so that its margin has
  zero linear correlation with the length difference on a sample of the training pairs.
"""

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.training.config import DEBIAS_CHOICES, RewardModelConfig
from rlhf.training.data import encode_pairs
from rlhf.training.progress import ProgressCallback, ProgressEvent, emit

PROGRESS_EVERY_S = 2.0  # report progress (and let the caller cancel) this often while encoding
FEATURE_VERSION = 1  # bump when the way features are computed changes (invalidates caches)


def shorten_trunk(model: Any, layers: int) -> int:
    """Keep only the first `layers` decoder layers of a sequence classifier (0 = all); returns the layer count kept
    (0 when the model has no decoder `layers` list and none was asked to be cut). The final norm stays, so the head
    reads normalised features as it would on the full model."""
    base = getattr(model, model.base_model_prefix)
    blocks = getattr(base, "layers", None)
    if blocks is None:
        if layers > 0:
            raise ValueError(f"trunk_layers: {type(model).__name__} has no decoder `layers` to shorten.")
        return 0
    total = len(blocks)
    if layers <= 0 or layers >= total:
        return total
    base.layers = blocks[:layers]
    model.config.num_hidden_layers = layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:layers]
    return layers


def head_layer(model: Any) -> Any:
    """The classifier's one-output linear layer (`score` for decoder models, `classifier` for BERT)."""
    import torch

    for name in ("score", "classifier"):
        layer = getattr(model, name, None)
        if isinstance(layer, torch.nn.Linear):
            return layer
    raise ValueError(f"{type(model).__name__} has no linear score/classifier layer to hold the reward head.")


def trunk_fingerprint(model: Any) -> str:
    """A short hash of the trunk (its type, depth and a sample of every weight but the head's): the feature cache's
    namespace, the same for the model being trained and for the saved model loaded back."""
    import torch

    head = {name for name in ("score", "classifier") if hasattr(model, name)}
    digest = hashlib.sha256(f"{FEATURE_VERSION}:{model.config.model_type}:{model.config.num_hidden_layers}".encode())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.split(".")[0] in head:
                continue
            digest.update(name.encode())
            digest.update(param.detach().flatten()[:64].float().numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """Last-token features per token-id sequence, in one .npz per trunk under `root` (None = no cache)."""

    def __init__(self, root: str | Path | None, fingerprint: str) -> None:
        self.path = Path(root) / f"features-{fingerprint}.npz" if root else None
        self.items: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.is_file():
            with np.load(self.path) as data:
                self.items = dict(zip(data["keys"].tolist(), data["values"], strict=True))
        self.added = 0

    @staticmethod
    def key(sequence: list[int]) -> str:
        return hashlib.sha256(np.asarray(sequence, dtype=np.int32).tobytes()).hexdigest()[:32]

    def get(self, sequence: list[int]) -> np.ndarray | None:
        return self.items.get(self.key(sequence))

    def put(self, sequence: list[int], feature: np.ndarray) -> None:
        self.items[self.key(sequence)] = feature
        self.added += 1

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.items.keys()))
        values = np.stack(list(self.items.values())).astype(np.float32)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, values=values)
        tmp.replace(self.path)
        self.added = 0


def pair_sequences(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[list[list[int]], Any]:
    """Token ids of every chosen text, then every rejected one, encoded and truncated as training encodes them;
    and the truncation stats. `split_pairs` cuts the features of these sequences back into the two halves."""
    items, stats = encode_pairs(rows, tokenizer, max_length)
    return [item["chosen_ids"] for item in items] + [item["rejected_ids"] for item in items], stats


def split_pairs(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) rows of features computed for `pair_sequences`."""
    half = len(feats) // 2
    return feats[:half], feats[half:]


def sequence_features(
    model: Any,
    sequences: list[list[int]],
    pad_token_id: int,
    batch_size: int = 8,
    cache: FeatureCache | None = None,
    progress: ProgressCallback | None = None,
    save_every: int = 512,
) -> np.ndarray:
    """The features the classifier's head reads, one float32 row per sequence. Batches group similar lengths;
    cached sequences are not recomputed (the cache is saved every `save_every` new texts and at the end); progress
    is reported every few seconds with the texts done so far."""
    # The features are whatever the classifier's head layer receives, captured with a hook, so they are exactly
    # what the saved model will score: the last non-pad token's hidden state for decoders, the pooled [CLS] for BERT.
    captured: list[Any] = []
    hook = head_layer(model).register_forward_hook(lambda _module, inputs, _output: captured.append(inputs[0]))
    out: list[np.ndarray | None] = [cache.get(s) if cache else None for s in sequences]
    last_emit = time.monotonic()
    todo = sorted((i for i, f in enumerate(out) if f is None), key=lambda i: len(sequences[i]))
    done_before = len(sequences) - len(todo)
    model.eval()
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            captured.clear()
            feats = _batch_features(model, [sequences[i] for i in batch], pad_token_id, captured)
            for row, i in enumerate(batch):
                out[i] = feats[row]
                if cache is not None:
                    cache.put(sequences[i], feats[row])
            if time.monotonic() - last_emit >= PROGRESS_EVERY_S or start + len(batch) == len(todo):
                last_emit = time.monotonic()
                emit(progress, ProgressEvent(done_before + start + len(batch), len(sequences), stage="features"))
            if cache is not None and cache.added >= save_every:
                cache.save()
    finally:
        hook.remove()
    if cache is not None:
        cache.save()
    return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def _batch_features(model: Any, batch: list[list[int]], pad_token_id: int, captured: list[Any]) -> np.ndarray:
    import torch

    from rlhf.training.scoring import right_padded

    ids, mask = right_padded(batch, pad_token_id)
    width = ids.shape[1]
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
    hidden = captured[-1]
    if hidden.dim() == 3:  # per-token states: the classifier reads the rightmost non-pad token, as Hugging Face does
        last = ((ids != pad_token_id).int() * torch.arange(width)).argmax(-1)
        hidden = hidden[torch.arange(len(batch)), last]
    return hidden.float().numpy()


def length_feature(rows: list[dict[str, Any]]) -> np.ndarray:
    """log(1 + chars(chosen)) - log(1 + chars(rejected)) per pair: the length difference the "residual" length head
    sees (characters as the length-aware evaluation counts them)."""
    from rlhf.training.evaluate import response_length

    chosen = np.log1p([response_length(row["chosen"]) for row in rows])
    rejected = np.log1p([response_length(row["rejected"]) for row in rows])
    return (chosen - rejected).astype(np.float64)


def balanced_weights(length_diff: np.ndarray) -> np.ndarray:
    """Weights giving chosen-longer and chosen-shorter pairs equal total weight (equal-length pairs weigh 1)."""
    weights = np.ones(len(length_diff))
    longer, shorter = length_diff > 0, length_diff < 0
    if longer.any() and shorter.any():
        half = (longer.sum() + shorter.sum()) / 2
        weights[longer] = half / longer.sum()
        weights[shorter] = half / shorter.sum()
    return weights


def fit_head(
    chosen: np.ndarray, rejected: np.ndarray, length_diff: np.ndarray, l2: float, debias: str, seed: int = 0
) -> dict[str, Any]:
    """Bradley-Terry head: P(chosen > rejected) = sigmoid(w . (f_c - f_r) [+ v * length_diff]).

    Features are standardised for the fit (so one `l2` suits any trunk) and the weights mapped back to raw features.
    Returns {"weight": raw-feature weights (the saved head), "length_weight": v (dropped when saving; 0 without the
    residual term), "scale": the standardisation, "train_accuracy"}."""
    from sklearn.linear_model import LogisticRegression

    if debias not in DEBIAS_CHOICES:
        raise ValueError(f"length_debias must be one of {', '.join(DEBIAS_CHOICES)}, not {debias!r}.")
    feats = np.concatenate([chosen, rejected]).astype(np.float64)
    scale = feats.std(axis=0) + 1e-6
    diff = (chosen - rejected) / scale
    residual = debias in ("residual", "both")
    if residual:
        # The length column is scaled up so that the L2 penalty barely touches it: the length head must be free
        # to take all of the length preference.
        diff = np.concatenate([diff, 10.0 * length_diff[:, None]], axis=1)
    weights = balanced_weights(length_diff) if debias in ("balanced", "both") else np.ones(len(diff))
    # Both orientations of every pair: the model has no intercept, so the classes must be symmetric.
    x = np.concatenate([diff, -diff])
    y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
    clf = LogisticRegression(C=1.0 / max(l2, 1e-12), fit_intercept=False, max_iter=5000, random_state=seed)
    clf.fit(x, y, sample_weight=np.concatenate([weights, weights]))
    coef = clf.coef_[0]
    content = coef[: chosen.shape[1]]
    return {
        "weight": (content / scale).astype(np.float32),
        "length_weight": float(coef[-1] * 10.0) if residual else 0.0,
        "scale": scale.astype(np.float32),
        "train_accuracy": float(((chosen - rejected) @ (content / scale) > 0).mean()),
    }


def install_head(model: Any, weight: np.ndarray, keep_bias: bool = False) -> None:
    """Put the weights into the classifier's one-output head layer (its bias, if any, set to zero unless kept)."""
    import torch

    layer = head_layer(model)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype).reshape(layer.weight.shape))
        if layer.bias is not None and not keep_bias:
            layer.bias.zero_()


def cache_dir(setting: str) -> Path | None:
    """The feature cache folder: '' = <MODELS_DIR>/feature-cache (MODELS_DIR defaults to models/), 'none' = off."""
    if setting.lower() == "none":
        return None
    if setting:
        return Path(setting)
    from rlhf.training.models import models_dir

    return models_dir() / "feature-cache"


def train_head(
    cfg: RewardModelConfig,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    progress: ProgressCallback | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Shorten the trunk, compute (or reuse) the features of every chosen and rejected text, fit the head and put
    it into `model`; returns (model, train metrics). The stats of the truncation come back as train/* metrics."""
    layers = shorten_trunk(model, cfg.trunk_layers)
    sequences, stats = pair_sequences(rows, tokenizer, cfg.max_length)
    cache = FeatureCache(cache_dir(cfg.feature_cache_dir), trunk_fingerprint(model))
    cached = sum(cache.get(s) is not None for s in sequences)
    message = f"features of {len(sequences)} texts through {layers} layers ({cached} cached)"
    emit(progress, ProgressEvent(0, len(sequences), message=message, stage="train"))
    started = time.monotonic()
    feats = sequence_features(
        model,
        sequences,
        tokenizer.pad_token_id,
        batch_size=cfg.per_device_train_batch_size,
        cache=cache,
        progress=_timed(progress, started),
    )
    features_s = time.monotonic() - started
    length_diff = length_feature(rows)
    fitted = fit_head(*split_pairs(feats), length_diff, cfg.head_l2, cfg.length_debias, cfg.seed)
    install_head(model, fitted["weight"])
    metrics = {
        **stats.as_metrics(),
        "train/steps": len(sequences),  # the progress unit of this method: texts through the trunk
        "train/trunk_layers": layers,
        "train/features_s": round(features_s, 2),
        "train/cached_texts": cached,
        "train/accuracy": fitted["train_accuracy"],
        "train/length_weight_dropped": fitted["length_weight"],
        "train/runtime_s": round(time.monotonic() - started, 3),
        "train/samples_per_s": round(len(rows) / max(features_s, 1e-9), 3),
    }
    return model, metrics


def _timed(progress: ProgressCallback | None, started: float) -> ProgressCallback:
    """Feature progress with elapsed time and an ETA (texts still to encode at the rate so far)."""

    def forward(event: ProgressEvent) -> None:
        elapsed = time.monotonic() - started
        timing = {"train/elapsed_s": round(elapsed, 2)}
        if event.step:
            timing["train/eta_s"] = round(elapsed / event.step * (event.total_steps - event.step), 2)
        message = f"features {event.step}/{event.total_steps}"
        emit(progress, ProgressEvent(event.step, event.total_steps, timing, message, "train"))

    return forward


def decorrelated_weight(weight: np.ndarray, diffs: np.ndarray, length_diff: np.ndarray) -> np.ndarray:
    """The head weight projected so that the margin w . (f_c - f_r) has zero covariance (hence zero linear
    correlation) with the length difference over these pairs: w - (w . c / c . c) c, where c is the covariance of
    the feature differences with the length difference. ODIN (Chen et al., 2024) penalises that correlation during
    training; projecting the trained head removes it exactly, at the cost of whatever signal lies along c."""
    centred = diffs - diffs.mean(axis=0)
    cov = (centred * (length_diff - length_diff.mean())[:, None]).mean(axis=0)
    norm = float(cov @ cov)
    if norm == 0.0:
        return weight
    return (weight - (weight @ cov) / norm * cov).astype(weight.dtype)


def decorrelate_head(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    cfg: RewardModelConfig,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """length_debias='decorrelate': project the trained model's head (see `decorrelated_weight`) using the features
    of a seeded sample of the training pairs (cached for frozen-head runs); returns the margin-length correlation on
    that sample before and after."""
    rng = np.random.default_rng(cfg.seed)
    sample = [rows[i] for i in sorted(rng.choice(len(rows), min(len(rows), cfg.decorrelate_pairs), replace=False))]
    sequences, _ = pair_sequences(sample, tokenizer, cfg.max_length)
    # A fine-tuned model's features are never asked for again: only a frozen trunk's are worth caching.
    frozen = cfg.method == "frozen-head"
    cache = FeatureCache(cache_dir(cfg.feature_cache_dir), trunk_fingerprint(model)) if frozen else None
    emit(progress, ProgressEvent(0, len(sequences), message=f"length decorrelation on {len(sample)} pairs"))
    feats = sequence_features(model, sequences, tokenizer.pad_token_id, cfg.per_device_eval_batch_size, cache=cache)
    chosen, rejected = split_pairs(feats)
    diffs, length_diff = (chosen - rejected).astype(np.float64), length_feature(sample)
    weight = head_layer(model).weight.detach().float().numpy()[0].astype(np.float64)
    projected = decorrelated_weight(weight, diffs, length_diff)
    install_head(model, projected.astype(np.float32), keep_bias=True)
    return {
        "train/decorrelate_pairs": len(sample),
        "train/margin_length_correlation_before": _corr(diffs @ weight, length_diff),
        "train/margin_length_correlation_after": _corr(diffs @ projected, length_diff),
    }


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return round(float(np.corrcoef(a, b)[0, 1]), 4)
