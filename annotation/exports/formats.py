"""Batches -> bytes: TRL's preference rows as JSONL lines or Arrow tables, and raw ranking lines.

Column order: TRL's ``prompt``, ``chosen``, ``rejected`` first, then ``margin`` (``--margin rank-diff``) and ``tie``
(``--ties keep``), then with ``columns="full"`` the ids and category and the strategy's own columns. Chat prompts are
written in TRL's conversational form: ``prompt`` = the messages, ``chosen``/``rejected`` = one assistant message.
An export is conversational as a whole when any of its prompts is a chat (plain prompts then become one user turn),
because one file must keep one schema for ``datasets``.

JSONL lines are assembled from per-prompt and per-response fragments serialised once by orjson, so the 500-char
texts are not re-encoded for each of the up to 45 pairs they appear in; each line equals ``orjson.dumps`` of the
row dict (the tests check it byte for byte). The remaining per-line work is one ``%`` format of the small columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

import orjson
import pyarrow as pa

from annotation.exports.options import ExportOptions
from annotation.exports.pairs import Batch
from annotation.exports.records import PromptData

STRATEGY_COLUMNS = {"all": ("ranking_id",), "majority": ("votes_for", "votes_against"), "consensus": ("n_labelers",)}
_INT_COLUMNS = ("prompt_id", "chosen_id", "rejected_id", "ranking_id", "votes_for", "votes_against", "n_labelers")
_TRUE, _FALSE = b"true", b"false"
_FIELD = {"ranking_id": "ranking"}  # column -> Batch attribute where the names differ
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


class _FloatBytes(dict):
    def __missing__(self, value: float) -> bytes:
        self[value] = encoded = orjson.dumps(float(value))
        return encoded


class Layout:
    """The columns of one export and how to turn a ``Batch`` into JSONL bytes or an Arrow table."""

    def __init__(self, options: ExportOptions, conversational: bool) -> None:
        self.conversational = conversational
        self.columns: list[str] = ["prompt", "chosen", "rejected"]
        if options.margin != "none":
            self.columns.append("margin")
        if options.ties == "keep":
            self.columns.append("tie")
        if options.columns == "full":
            self.columns += ["prompt_id", "chosen_id", "rejected_id", "category", *STRATEGY_COLUMNS[options.strategy]]
        self._template = self._jsonl_template()
        self._margins = _FloatBytes()

    # --- values --------------------------------------------------------------------------------------------------

    def prompt_value(self, prompt: PromptData) -> str | list[dict[str, str]]:
        if not self.conversational:
            return prompt.text
        if prompt.messages:
            return [{"role": m["role"], "content": m["content"]} for m in prompt.messages]
        return [{"role": "user", "content": prompt.text}]

    def response_value(self, text: str) -> str | list[dict[str, str]]:
        return [{"role": "assistant", "content": text}] if self.conversational else text

    def row_dict(self, batch: Batch, row: int) -> dict[str, Any]:
        """One row as a dict (the slow reference the fast paths are tested against)."""
        prompt = batch.prompts[batch.prompt[row]]
        values: dict[str, Callable[[], Any]] = {
            "prompt": lambda: self.prompt_value(prompt),
            "chosen": lambda: self.response_value(prompt.responses[batch.chosen[row]]),
            "rejected": lambda: self.response_value(prompt.responses[batch.rejected[row]]),
            "margin": lambda: float(batch.margin[row]),
            "tie": lambda: bool(batch.tie[row]),
            "prompt_id": lambda: prompt.id,
            "chosen_id": lambda: batch.chosen[row],
            "rejected_id": lambda: batch.rejected[row],
            "category": lambda: prompt.category,
        }
        return {name: values[name]() if name in values else getattr(batch, _FIELD.get(name, name))[row]
                for name in self.columns}  # fmt: skip

    # --- JSONL ---------------------------------------------------------------------------------------------------

    def _jsonl_template(self) -> bytes:
        """The line after ``rejected``: the small columns, formatted per row with ``%``."""
        fields = [f',"{name}":{"%d" if name in _INT_COLUMNS else "%b"}' for name in self.columns[3:]]
        return ("".join(fields) + "}\n").encode()

    def _sources(self, batch: Batch) -> dict[str, Callable[[], list[Any]]]:
        """The small columns, per row, as values for the line template."""
        categories = [orjson.dumps(p.category) for p in batch.prompts]
        prompt_ids = [p.id for p in batch.prompts]
        return {
            "margin": lambda: list(map(self._margins.__getitem__, batch.margin)),
            "tie": lambda: [_TRUE if tie else _FALSE for tie in batch.tie],
            "prompt_id": lambda: [prompt_ids[i] for i in batch.prompt],
            "chosen_id": lambda: batch.chosen,
            "rejected_id": lambda: batch.rejected,
            "category": lambda: [categories[i] for i in batch.prompt],
            "ranking_id": lambda: batch.ranking,
            "votes_for": lambda: batch.votes_for,
            "votes_against": lambda: batch.votes_against,
            "n_labelers": lambda: batch.n_labelers,
        }

    def jsonl(self, batch: Batch) -> bytes:
        """The batch's lines, joined once from 4 pieces per line: ``{"prompt":P,"chosen":`` per prompt,
        ``C,"rejected":`` per response, ``R`` per response, and the small columns. The texts are serialised once per
        batch and never copied into per-line strings first."""
        if not len(batch):
            return b""
        heads = [b'{"prompt":' + orjson.dumps(self.prompt_value(p)) + b',"chosen":' for p in batch.prompts]
        rejected = {rid: orjson.dumps(self.response_value(t)) for p in batch.prompts for rid, t in p.responses.items()}
        chosen = {rid: fragment + b',"rejected":' for rid, fragment in rejected.items()}
        sources = self._sources(batch)
        tail_columns = [sources[name]() for name in self.columns[3:]]
        tails = [self._template % row for row in zip(*tail_columns, strict=True)] if tail_columns else None
        pieces = zip(
            [heads[i] for i in batch.prompt], map(chosen.__getitem__, batch.chosen),
            map(rejected.__getitem__, batch.rejected), tails if tails is not None else repeat(b"}\n", len(batch)),
            strict=True,
        )  # fmt: skip
        return b"".join(chain.from_iterable(pieces))

    # --- Arrow ---------------------------------------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        text = pa.list_(MESSAGE) if self.conversational else pa.string()
        types = {"prompt": text, "chosen": text, "rejected": text, "margin": pa.float64(), "tie": pa.bool_()}
        types |= {name: pa.int64() for name in _INT_COLUMNS} | {"category": pa.string()}
        return pa.schema([(name, types[name]) for name in self.columns])

    def arrow(self, batch: Batch) -> pa.Table:
        """The batch as a table: each text is converted once and gathered with ``take``."""
        schema = self.schema()
        rids = [rid for p in batch.prompts for rid in p.responses]
        slot = {rid: i for i, rid in enumerate(rids)}
        texts = pa.array([self.response_value(t) for p in batch.prompts for t in p.responses.values()],
                         type=schema.field("chosen").type)  # fmt: skip
        prompt_index = pa.array(batch.prompt, type=pa.int64())
        columns = {
            "prompt": lambda: pa.array(
                [self.prompt_value(p) for p in batch.prompts], type=schema.field("prompt").type
            ).take(prompt_index),
            "chosen": lambda: texts.take(pa.array([slot[r] for r in batch.chosen], type=pa.int64())),
            "rejected": lambda: texts.take(pa.array([slot[r] for r in batch.rejected], type=pa.int64())),
            "prompt_id": lambda: pa.array([p.id for p in batch.prompts], type=pa.int64()).take(prompt_index),
            "category": lambda: pa.array([p.category for p in batch.prompts], type=pa.string()).take(prompt_index),
        }
        plain = {"chosen_id": batch.chosen, "rejected_id": batch.rejected, "ranking_id": batch.ranking,
                 "votes_for": batch.votes_for, "votes_against": batch.votes_against, "n_labelers": batch.n_labelers,
                 "margin": batch.margin, "tie": batch.tie}  # fmt: skip
        arrays = [
            columns[field.name]() if field.name in columns else pa.array(plain[field.name], type=field.type)
            for field in schema
        ]
        return pa.Table.from_arrays(arrays, schema=schema)


def raw_line(prompt: PromptData, ranking_raw: dict[str, Any], ranks: dict[int, int], flags: list[str], side: str,
             ranking_id: int) -> bytes:  # fmt: skip
    """One raw ranking: every response with its text, model and rank (and, where the project has a per-response
    form, its `rating`), plus the ranking's own fields."""
    models = prompt.models or {}
    shown = ranking_raw.get("shown_order") or sorted(ranks)
    ratings = ranking_raw.get("ratings")
    line = {
        "ranking_id": ranking_id,
        "prompt_id": prompt.id,
        "prompt": prompt.messages if prompt.messages else prompt.text,
        "category": prompt.category,
        "split": side,
        **{k: v for k, v in ranking_raw.items() if k not in ("shown_order", "ratings")},
        "flags": flags,
        "shown_order": shown,
        "responses": [
            {"id": rid, "text": prompt.responses.get(rid, ""), "model": models.get(rid, ""), "rank": ranks[rid]}
            | ({"rating": ratings.get(rid)} if ratings is not None else {})
            for rid in sorted(ranks, key=lambda rid: (ranks[rid], rid))
        ],
    }
    return orjson.dumps(line) + b"\n"


# --- the ratings dataset: one row per response per labeler ---------------------------------------------------------


@dataclass
class RatingsBatch:
    """Rating rows in columns: ``prompt`` indexes ``prompts``; ``values`` is the response's form ({field key:
    value}, None where the ranking has no form values, e.g. an imported one)."""

    prompts: list[PromptData] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    response: list[int] = field(default_factory=list)
    rank: list[float] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)
    labeler: list[int] = field(default_factory=list)
    values: list[dict[str, Any] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.response)

    def add_prompt(self, prompt: PromptData) -> int:
        self.prompts.append(prompt)
        return len(self.prompts) - 1


RATING_ID_COLUMNS = ("prompt_id", "response_id", "ranking_id", "labeler_id")


class RatingsLayout:
    """The columns of a ratings export: ``prompt``, ``response``, ``score`` (the likert field), a ``label_<key>``
    (bool) per yes/no label and a ``text_<key>`` per text field of the project's form, the response's ``rank`` in
    the same judgment, then (``columns="full"``) ``prompt_id``, ``response_id``, ``ranking_id``, ``labeler_id``,
    ``category``. Values a ranking does not have (no form when it was made) are null."""

    def __init__(self, options: ExportOptions, conversational: bool, fields: list[dict] | None) -> None:
        self.conversational = conversational
        fields = fields or []
        likert = next((f for f in fields if f["type"] == "likert"), None)
        self.score_key = likert["key"] if likert else None
        self.labels = [f["key"] for f in fields if f["type"] == "label"]
        self.texts = [f["key"] for f in fields if f["type"] == "text"]
        self.columns = ["prompt", "response", "score", *(f"label_{k}" for k in self.labels)]
        self.columns += [f"text_{k}" for k in self.texts] + ["rank"]
        if options.columns == "full":
            self.columns += [*RATING_ID_COLUMNS, "category"]
        self._pairs = Layout(options, conversational)  # its prompt and response values

    def rows(self, batch: RatingsBatch) -> list[dict[str, Any]]:
        out = []
        for i in range(len(batch)):
            prompt = batch.prompts[batch.prompt[i]]
            values = batch.values[i]
            rank = batch.rank[i]
            row = {
                "prompt": self._pairs.prompt_value(prompt),
                "response": self._pairs.response_value(prompt.responses[batch.response[i]]),
                "score": None if values is None or self.score_key is None else values.get(self.score_key),
                **{f"label_{k}": None if values is None else values.get(k) for k in self.labels},
                **{f"text_{k}": None if values is None else values.get(k) for k in self.texts},
                "rank": int(rank),
                "prompt_id": prompt.id,
                "response_id": batch.response[i],
                "ranking_id": batch.ranking[i],
                "labeler_id": batch.labeler[i],
                "category": prompt.category,
            }
            out.append({name: row[name] for name in self.columns})
        return out

    def jsonl(self, batch: RatingsBatch) -> bytes:
        return b"".join(orjson.dumps(row) + b"\n" for row in self.rows(batch))

    def schema(self) -> pa.Schema:
        text = pa.list_(MESSAGE) if self.conversational else pa.string()
        types = {"prompt": text, "response": text, "score": pa.int64(), "rank": pa.int64(), "category": pa.string()}
        types |= {name: pa.int64() for name in RATING_ID_COLUMNS}
        types |= {f"label_{k}": pa.bool_() for k in self.labels} | {f"text_{k}": pa.string() for k in self.texts}
        return pa.schema([(name, types[name]) for name in self.columns])

    def arrow(self, batch: RatingsBatch) -> pa.Table:
        return pa.Table.from_pylist(self.rows(batch), schema=self.schema())


def layout_for(
    options: ExportOptions, conversational: bool, fields: list[dict] | None = None
) -> Layout | RatingsLayout:
    """The layout of an export: pairs, or the ratings dataset (with the project's form fields)."""
    if options.dataset == "ratings":
        return RatingsLayout(options, conversational, fields)
    return Layout(options, conversational)
