"""Pure parsing and validation of import files (no Django): JSONL/CSV prompts with responses, and TRL pairwise files.

The parser streams the file (one line at a time) and reports every bad line with its 1-based line number; the
service (`annotation.services.imports`) validates the whole file in a first pass (`scan_file`), and writes nothing
unless it has no errors (all-or-nothing); its second pass reads the records again (`iter_records`).

Prompt file, JSONL (one object per line):
    {"prompt": "text" | [{"role": "user", "content": "..."}, ...],
     "responses": ["text", {"text": "...", "model": "name", "metadata": {...}}, ...],   # 2..10
     "category": "qa", "source": "...", "id": "external id", "metadata": {...}}
Pairwise file (TRL preference format), JSONL:  {"prompt": ..., "chosen": ..., "rejected": ...}
CSV: a header row with `prompt` and `response_1` .. `response_10` (optional `model_1` .., `category`, `source`, `id`;
other columns go into metadata), or `prompt`, `chosen`, `rejected` for pairwise files.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_TEXT_CHARS = 50_000
MIN_RESPONSES, MAX_RESPONSES = 2, 10
CHAT_ROLES = {"system", "user", "assistant", "tool"}
MAX_METADATA_DEPTH = 20  # metadata nested deeper than this is refused (databases limit JSON nesting too)
MAX_INT_DIGITS = 18  # integers in metadata must fit a 64-bit column once a database reads them


@dataclass
class ResponseRecord:
    text: str
    model_name: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class PromptRecord:
    line: int
    text: str
    messages: list[dict] | None
    responses: list[ResponseRecord]
    category: str = ""
    source: str = ""
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    chosen_index: int | None = None  # pairwise files: the response preferred by the imported annotator

    @property
    def content_hash(self) -> str:
        """Identity of an exact duplicate: the same prompt with the same set of responses."""
        content = {"prompt": self.messages or self.text, "responses": sorted(r.text for r in self.responses)}
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class ParseReport:
    kind: str = "prompts"  # "prompts" or "pairwise"
    records: list[PromptRecord] = field(default_factory=list)  # parse_file only; scan_file keeps none
    n_records: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def error_lines(self) -> list[str]:
        return [f"line {line}: {message}" for line, message in self.errors]


class LineError(ValueError):
    pass


def messages_to_text(messages: list[dict]) -> str:
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def _storable(value: str, what: str) -> str:
    """Strings a database can store: no lone surrogates (JSON's "\\ud800" escapes) and no NUL characters."""
    if "\x00" in value:
        raise LineError(f"{what} contains a NUL character (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LineError(f"{what} contains a lone surrogate ({value[exc.start]!r}): not valid Unicode.") from None
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise LineError(f"{what} must be a string, got {type(value).__name__}.")
    if not value.strip():
        raise LineError(f"{what} is empty.")
    if len(value) > MAX_TEXT_CHARS:
        raise LineError(f"{what} is {len(value):,} characters long; the limit is {MAX_TEXT_CHARS:,}.")
    return _storable(value, what)


def _label(value: object, what: str, max_chars: int) -> str:
    """An optional short label (category, source, id, model): a string or a number, cut to the column's length."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise LineError(f"{what} must be a string, got {type(value).__name__}.")
    if isinstance(value, int) and len(str(abs(value))) > MAX_INT_DIGITS:
        raise LineError(f"{what} is a number of more than {MAX_INT_DIGITS} digits.")
    return _storable(str(value), what)[:max_chars]


def _metadata(value: object, what: str, depth: int = 0) -> object:
    """Check a metadata value all the way down: storable strings and keys, finite numbers, bounded nesting."""
    if depth > MAX_METADATA_DEPTH:
        raise LineError(f"{what} is nested more than {MAX_METADATA_DEPTH} levels deep.")
    if isinstance(value, str):
        return _storable(value, what)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_INT_DIGITS:
            raise LineError(f"{what} holds a number of more than {MAX_INT_DIGITS} digits.")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise LineError(f"{what} holds {value}, which is not a JSON number.")
        return value
    if isinstance(value, list):
        return [_metadata(item, what, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_storable(str(k), what): _metadata(v, what, depth + 1) for k, v in value.items()}
    raise LineError(f"{what} holds a {type(value).__name__}, which is not a JSON value.")


def _metadata_object(value: object, what: str) -> dict:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise LineError(f"{what} must be an object, got {type(value).__name__}.")
    return _metadata(value, what)


def _messages(value: list) -> list[dict]:
    if not value:
        raise LineError("'prompt' is an empty list of chat messages.")
    messages = []
    for i, message in enumerate(value, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise LineError(f"chat message {i} must be an object with 'role' and 'content'.")
        if not isinstance(message["role"], str) or message["role"] not in CHAT_ROLES:
            raise LineError(f"chat message {i} has unknown role {message['role']!r} (use {sorted(CHAT_ROLES)}).")
        messages.append({"role": message["role"], "content": _text(message["content"], f"chat message {i} content")})
    return messages


def _prompt(value: object) -> tuple[str, list[dict] | None]:
    if isinstance(value, list):
        messages = _messages(value)
        return messages_to_text(messages), messages
    return _text(value, "'prompt'"), None


def _response(value: object, i: int) -> ResponseRecord:
    if isinstance(value, dict):
        if "text" not in value:
            raise LineError(f"response {i} is an object without 'text'.")
        model = _label(value.get("model", value.get("model_name", "")), f"response {i} 'model'", 200)
        metadata = _metadata_object(value.get("metadata"), f"response {i} 'metadata'")
        return ResponseRecord(_text(value["text"], f"response {i}"), model, metadata)
    return ResponseRecord(_text(value, f"response {i}"))


def _completion_text(value: object, what: str) -> str:
    """TRL conversational pairs carry chosen/rejected as message lists: keep the assistant's final turn."""
    if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        return _text(value[-1]["content"], what)
    return _text(value, what)


def _require(row: dict, *names: str) -> None:
    missing = [name for name in names if name not in row or row[name] is None]
    if missing:
        raise LineError("missing field " + ", ".join(repr(name) for name in missing) + ".")


def record_from_row(row: dict, line: int, kind: str) -> PromptRecord:
    """Validate one parsed row (JSON object or CSV dict) into a record; raises LineError with the reason."""
    if not isinstance(row, dict):
        raise LineError(f"expected a JSON object, got {type(row).__name__}.")
    known = {"prompt", "responses", "chosen", "rejected", "category", "source", "id", "metadata"}
    if kind == "pairwise":
        _require(row, "prompt", "chosen", "rejected")
        text, messages = _prompt(row["prompt"])
        responses = [
            ResponseRecord(_completion_text(row["chosen"], "'chosen'")),
            ResponseRecord(_completion_text(row["rejected"], "'rejected'")),
        ]
        chosen_index = 0
    else:
        _require(row, "prompt", "responses")
        text, messages = _prompt(row["prompt"])
        if not isinstance(row["responses"], list):
            raise LineError("'responses' must be a list.")
        count = len(row["responses"])
        if not MIN_RESPONSES <= count <= MAX_RESPONSES:
            raise LineError(f"{count} responses; a prompt needs {MIN_RESPONSES} to {MAX_RESPONSES}.")
        responses = [_response(value, i) for i, value in enumerate(row["responses"], start=1)]
        chosen_index = None
    metadata = _metadata_object(row.get("metadata"), "'metadata'")
    extra = {k: v for k, v in row.items() if k not in known and v not in (None, "")}
    metadata = {**_metadata(extra, "an extra field"), **metadata}
    return PromptRecord(
        line=line,
        text=text,
        messages=messages,
        responses=responses,
        category=_label(row.get("category"), "'category'", 100),
        source=_label(row.get("source"), "'source'", 200),
        external_id=_label(row.get("id"), "'id'", 200),
        metadata=metadata,
        chosen_index=chosen_index,
    )


LINE_BREAK = re.compile(rb"\r\n|\r|\n")
READ_BYTES = 1 << 20


def iter_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(1-based number, raw line) of a binary stream read 1 MB at a time, split exactly like `bytes.splitlines()`
    (on \\n, \\r\\n and a lone \\r), so line numbers match what the whole file would give."""
    number, buffer = 0, b""
    while True:
        chunk = stream.read(READ_BYTES)
        buffer += chunk
        # a final \r may be the first half of a \r\n split across two reads: keep it for the next one
        limit = len(buffer) - 1 if chunk and buffer.endswith(b"\r") else len(buffer)
        start = 0
        for match in LINE_BREAK.finditer(buffer, 0, limit):
            number += 1
            yield number, buffer[start : match.start()]
            start = match.end()
        buffer = buffer[start:]
        if not chunk:
            if buffer:
                yield number + 1, buffer
            return


def _decoded_lines(stream: BinaryIO, report: ParseReport) -> Iterator[tuple[int, str]]:
    for number, raw in iter_lines(stream):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.errors.append((number, f"bad encoding: not UTF-8 ({exc.reason} at byte {exc.start})."))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _detect_kind(first: dict | None, kind: str) -> str:
    if kind != "auto":
        return kind
    if isinstance(first, dict) and "chosen" in first and "rejected" in first and "responses" not in first:
        return "pairwise"
    return "prompts"


def _jsonl_rows(stream: BinaryIO, kind: str, report: ParseReport) -> Iterator[tuple[int, object]]:
    detected = False
    for number, line in _decoded_lines(stream, report):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            report.errors.append((number, f"invalid JSON: {exc.msg} (column {exc.colno})."))
            continue
        except RecursionError:
            report.errors.append((number, "invalid JSON: nested too deeply."))
            continue
        except ValueError as exc:  # NaN/Infinity (see _no_constant), or an integer over Python's digit limit
            reason = "a number with too many digits" if "digits" in str(exc) else str(exc)
            report.errors.append((number, f"invalid JSON: {reason}."))
            continue
        if not detected:  # the first line that parses decides the kind
            report.kind, detected = _detect_kind(row, kind), True
        yield number, row
    if not detected:
        report.kind = _detect_kind(None, kind)


def _csv_row(row: dict, kind: str) -> dict:
    row = {(k or "").strip(): v for k, v in row.items()}
    if kind == "pairwise":
        return row
    responses = []
    for i in range(1, MAX_RESPONSES + 2):
        text = row.pop(f"response_{i}", None)
        model = row.pop(f"model_{i}", "") or ""
        if text not in (None, ""):
            responses.append({"text": text, "model": model})
    row["responses"] = responses if "prompt" in row else None
    return row


def _csv_rows(stream: BinaryIO, kind: str, report: ParseReport) -> Iterator[tuple[int, object]]:
    """A file with any line that is not UTF-8 is refused on those lines alone (one pass over the bytes first),
    as the CSV reader cannot tell where its rows start otherwise."""
    for _ in _decoded_lines(stream, report):
        pass
    if report.errors:
        return
    stream.seek(0)
    reader = csv.DictReader(line + "\n" for _, line in _decoded_lines(stream, report))
    header = reader.fieldnames or []
    if "prompt" not in header:
        report.errors.append((1, "missing column 'prompt' in the header row."))
        return
    report.kind = kind if kind != "auto" else ("pairwise" if {"chosen", "rejected"} <= set(header) else "prompts")
    try:
        for row in reader:
            if None in row:
                report.errors.append((reader.line_num, "more values than header columns."))
                continue
            yield reader.line_num, _csv_row(row, report.kind)
    except csv.Error as exc:
        report.errors.append((reader.line_num, f"invalid CSV: {exc}."))


def iter_records(stream: BinaryIO, filename: str, kind: str, report: ParseReport) -> Iterator[PromptRecord]:
    """The valid records of a file, one at a time, skipping exact duplicates within it; every bad line goes to
    `report.errors` and every warning to `report.warnings` as the stream is read. Memory: one line at a time plus
    a 32-byte digest per record (for duplicates). CSV is read by extension; anything else is JSON lines."""
    rows = _csv_rows if filename.lower().endswith(".csv") else _jsonl_rows
    seen: dict[bytes, int] = {}
    for number, row in rows(stream, kind, report):
        try:
            record = record_from_row(row, number, report.kind)
        except LineError as exc:
            report.errors.append((number, str(exc)))
            continue
        texts = [r.text for r in record.responses]
        if len(set(texts)) != len(texts):
            report.warnings.append((number, "identical responses within this prompt (kept: two models can agree)."))
        digest = bytes.fromhex(record.content_hash)
        first = seen.get(digest)
        if first is not None:
            report.warnings.append((number, f"exact duplicate of line {first}: skipped."))
            continue
        seen[digest] = number
        yield record


def scan_file(
    stream: BinaryIO, filename: str, kind: str = "auto", on_record: Callable[[PromptRecord], None] | None = None
) -> ParseReport:
    """First pass: validate the whole stream without keeping its records (`report.n_records` counts them);
    `on_record` sees each valid record in file order (the import's hygiene checks)."""
    report = ParseReport()
    for record in iter_records(stream, filename, kind, report):
        report.n_records += 1
        if on_record is not None:
            on_record(record)
    report.errors.sort()
    return report


def parse_file(data: bytes, filename: str, kind: str = "auto") -> ParseReport:
    """Parse by extension: .csv is CSV, anything else (.jsonl, .json, .ndjson) is JSON lines; records kept."""
    report = ParseReport()
    report.records = list(iter_records(io.BytesIO(data), filename, kind, report))
    report.n_records = len(report.records)
    report.errors.sort()
    return report


def parse_jsonl(data: bytes, kind: str = "auto") -> ParseReport:
    return parse_file(data, "data.jsonl", kind)


def parse_csv(data: bytes, kind: str = "auto") -> ParseReport:
    return parse_file(data, "data.csv", kind)
