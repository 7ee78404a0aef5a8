"""Pure parsing of multi-labeler ranking files (no Django), e.g. ../shared/data/wmt23_ende_3raters.jsonl.

One JSON object per line and annotator: `item_id`, `annotator_id`, `outputs` {name: text}, `ranks` {name: rank}
(1 = best, ties share a rank; averaged ranks such as 2.5 are allowed and become dense ranks, order kept), an
optional `source`/`prompt` (the prompt text) and any other fields, kept as metadata. Output names become the
responses' model names; every line of one item must carry the same outputs. All-or-nothing like prompt imports.
"""

import io
import json
from dataclasses import dataclass, field

from annotation.importing import MAX_RESPONSES, MIN_RESPONSES, ParseReport, _decoded_lines, _text

ITEM_FIELDS = ("item_id", "annotator_id", "outputs", "ranks")
PROMPT_KEYS = ("source", "prompt")


@dataclass
class RankedItem:
    item_id: str
    line: int
    prompt: str
    outputs: dict[str, str]
    metadata: dict
    judgments: list[tuple[int, str, dict[str, int], dict]] = field(default_factory=list)  # line, annotator, ranks, meta


def dense_ranks(ranks: dict[str, float]) -> dict[str, int]:
    """Map any ranks (averaged ties like 2.5 included) to dense ranks 1..n, keeping order and ties."""
    levels = {value: i for i, value in enumerate(sorted(set(ranks.values())), start=1)}
    return {name: levels[value] for name, value in ranks.items()}


def _ranks(row: dict) -> dict[str, int]:
    outputs, ranks = row["outputs"], row["ranks"]
    if not isinstance(outputs, dict) or not isinstance(ranks, dict):
        raise ValueError("'outputs' and 'ranks' must be objects keyed by output name.")
    if not MIN_RESPONSES <= len(outputs) <= MAX_RESPONSES:
        raise ValueError(f"{len(outputs)} outputs; an item needs {MIN_RESPONSES} to {MAX_RESPONSES}.")
    if set(ranks) != set(outputs):
        missing, extra = sorted(set(outputs) - set(ranks)), sorted(set(ranks) - set(outputs))
        raise ValueError(f"'ranks' must rank every output exactly: missing {missing}, unknown {extra}.")
    for name, value in ranks.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
            raise ValueError(f"rank {value!r} of {name!r} is not a number >= 1.")
    for name, text in outputs.items():
        _text(text, f"output {name!r}")
    return dense_ranks(ranks)


def _item(row: dict, line: int) -> RankedItem:
    prompt_key = next((key for key in PROMPT_KEYS if key in row), None)
    prompt = _text(row[prompt_key], f"'{prompt_key}'") if prompt_key else f"Item {row['item_id']}"
    per_annotator = {"scores", "ranking", "errors", "annotator_id", "ranks", "outputs", "item_id", prompt_key}
    metadata = {k: v for k, v in row.items() if k not in per_annotator}
    return RankedItem(str(row["item_id"]), line, prompt, dict(row["outputs"]), metadata)


def parse_rankings(data: bytes) -> tuple[list[RankedItem], ParseReport]:
    report = ParseReport(kind="rankings")
    items: dict[str, RankedItem] = {}
    seen: set[tuple[str, str]] = set()
    for number, text in _decoded_lines(io.BytesIO(data), report):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}.")
            missing = [name for name in ITEM_FIELDS if name not in row]
            if missing:
                raise ValueError("missing field " + ", ".join(repr(name) for name in missing) + ".")
            ranks = _ranks(row)
            item = items.setdefault(str(row["item_id"]), _item(row, number))
            if row["outputs"] != item.outputs:
                raise ValueError(f"outputs differ from line {item.line} of the same item {item.item_id!r}.")
            key = (item.item_id, str(row["annotator_id"]))
            if key in seen:
                raise ValueError(f"annotator {key[1]!r} already ranked item {key[0]!r}.")
            seen.add(key)
            extra = {k: row[k] for k in ("scores", "ranking", "errors") if k in row}
            extra["original_ranks"] = row["ranks"]
            item.judgments.append((number, str(row["annotator_id"]), ranks, extra))
        except json.JSONDecodeError as exc:
            report.errors.append((number, f"invalid JSON: {exc.msg} (column {exc.colno})."))
        except ValueError as exc:
            report.errors.append((number, str(exc)))
    report.errors.sort()
    return list(items.values()), report
