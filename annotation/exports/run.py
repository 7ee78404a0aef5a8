"""Whole exports: the split pass, then the chunked pipeline into files (with ``export_meta.json``), a stream, or
only the metadata.

Callers (the Django service, tests, the benchmark) provide the data as two callables: ``prompt_texts()`` yields
(id, text) for the split pass; ``load_chunks(ids)`` yields lists of ``PromptData`` for those ids, in that order.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from annotation.exports.bundles import BUNDLE_FORMATS, write_bundle
from annotation.exports.formats import Layout, RatingsLayout, layout_for
from annotation.exports.meta import META_FILE, content_hash, export_meta
from annotation.exports.options import ExportOptions
from annotation.exports.pipeline import Exporter, ExportStats
from annotation.exports.records import Chunk, PromptData
from annotation.exports.split import TEST, TRAIN, PromptSplitter, Split
from annotation.exports.writers import BufferFile, NullFile, Sink, file_sink, save_hf_dataset

FORMAT_UNKNOWN = "Unknown format {fmt!r}; use one of jsonl, parquet, hf, raw, openrlhf, verl."
BUNDLE_UNSAFE = "An {fmt} bundle has no unsafe file: export the unsafe rankings with --format jsonl."
META_FORMAT_UNKNOWN = "Unknown format {fmt!r} for metadata without files; use one of jsonl, parquet, raw."
STREAM_SPLIT_UNKNOWN = "split must be 'train' or 'test', got {split!r}."
RAW_RATINGS = "Format raw writes whole rankings (their ratings included): use dataset pairs with it."
CHUNK_PROMPTS = 1000

PromptTexts = Callable[[], Iterable[tuple[int, str]]]
LoadChunks = Callable[[np.ndarray], Iterable[Chunk | list[PromptData]]]
Progress = Callable[[int, int], None]  # (prompts done, prompts total)


@dataclass
class ExportResult:
    out: Path
    files: dict[str, str]  # path relative to `out` -> sha256
    meta: dict[str, Any]
    stats: ExportStats


def split_prompts(options: ExportOptions, prompt_texts: PromptTexts) -> Split:
    splitter = PromptSplitter(
        test_ratio=options.test_ratio, seed=options.seed, threshold=options.near_duplicate_threshold
    )
    splitter.add_all(prompt_texts())
    return splitter.finish()


def _feed(exporter: Exporter, split: Split, load_chunks: LoadChunks, progress: Progress | None) -> Iterator[None]:
    done, total = 0, len(split.ids)
    for chunk in load_chunks(split.ids):
        exporter.process(chunk)
        done += len(chunk.prompts if isinstance(chunk, Chunk) else chunk)
        if progress is not None:
            progress(done, total)
        yield


def _run(exporter: Exporter, split: Split, load_chunks: LoadChunks, progress: Progress | None) -> None:
    """Feed every chunk through the exporter, then close its sinks (also when a chunk fails)."""
    try:
        for _ in _feed(exporter, split, load_chunks, progress):
            pass
    finally:
        exporter.close()


def export_files(
    *,
    options: ExportOptions,
    fmt: str,
    out: Path,
    prompt_texts: PromptTexts,
    load_chunks: LoadChunks,
    conversational: bool,
    context: dict[str, Any],
    labeler_names: Callable[[list[int]], list[dict[str, Any]]],
    unsafe_path: Path | None = None,
    progress: Progress | None = None,
    rating_fields: list[dict] | None = None,
) -> ExportResult:
    """Write the export into the directory ``out`` and ``out/export_meta.json``; returns the metadata. ``fmt``
    openrlhf or verl: a hand-off bundle for that engine (bundles/). ``rating_fields`` are the project's
    per-response form fields (the columns of dataset ``ratings``)."""
    if fmt in BUNDLE_FORMATS:
        if unsafe_path is not None:
            raise ValueError(BUNDLE_UNSAFE.format(fmt=fmt))
        return _export_bundle(fmt, options=options, out=out, prompt_texts=prompt_texts, load_chunks=load_chunks,
                              conversational=conversational, context=context, labeler_names=labeler_names,
                              progress=progress, rating_fields=rating_fields)  # fmt: skip
    _check(fmt, options, ("jsonl", "parquet", "hf", "raw"))
    out.mkdir(parents=True, exist_ok=True)
    split = split_prompts(options, prompt_texts)
    layout = layout_for(options, conversational, rating_fields)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out)) if fmt == "hf" else out
    names, data_format = _file_names(fmt)
    sinks = {key: file_sink(work / name, layout, data_format) for key, name in names.items()}
    unsafe = None
    if unsafe_path is not None:
        unsafe_format = "parquet" if unsafe_path.suffix == ".parquet" and fmt != "raw" else "jsonl"
        unsafe = file_sink(unsafe_path, layout, unsafe_format)
    exporter = Exporter(options.with_unsafe(unsafe is not None), split, sinks, unsafe)
    _run(exporter, split, load_chunks, progress)
    files = {names[key]: sink.sha256 or "" for key, sink in sinks.items()}
    if fmt == "hf":
        try:
            files = save_hf_dataset({key: work / name for key, name in names.items()}, out, work / "cache")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if unsafe is not None:
        files[str(unsafe_path)] = unsafe.sha256 or ""
    meta = _meta(fmt, exporter, split, files, context, labeler_names, layout)
    (out / META_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return ExportResult(out=out, files=files, meta=meta, stats=exporter.stats)


def _export_bundle(engine: str, *, options: ExportOptions, out: Path, **export: Any) -> ExportResult:
    """The JSONL export (every column, ties dropped: neither engine models them) in a temporary folder inside
    ``out``, turned into the engine's bundle; export_meta.json lists the bundle's files and its facts."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        options = replace(options, columns="full", ties="drop")
        result = export_files(options=options, fmt="jsonl", out=work, **export)
        files, bundle = write_bundle(engine, work=work, out=out, meta=result.meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {**result.meta, "format": engine, "files": files, "content_hash": content_hash(files), "bundle": bundle}
    (out / META_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return ExportResult(out=out, files=files, meta=meta, stats=result.stats)


def export_meta_only(
    *,
    options: ExportOptions,
    fmt: str,
    prompt_texts: PromptTexts,
    load_chunks: LoadChunks,
    conversational: bool,
    context: dict[str, Any],
    labeler_names: Callable[[list[int]], list[dict[str, Any]]],
    rating_fields: list[dict] | None = None,
) -> dict[str, Any]:
    """The ``export_meta.json`` that ``export_files`` writes for the same arguments (no unsafe file), file hashes
    included, without writing any file: the data files' bytes are made, hashed and dropped. Formats jsonl, parquet
    and raw (an ``hf`` export's hashes are of the Arrow files ``datasets`` writes)."""
    if fmt not in ("jsonl", "parquet", "raw"):
        raise ValueError(META_FORMAT_UNKNOWN.format(fmt=fmt))
    _check(fmt, options, ("jsonl", "parquet", "raw"))
    split = split_prompts(options, prompt_texts)
    layout = layout_for(options, conversational, rating_fields)
    names, data_format = _file_names(fmt)
    sinks = {key: Sink(NullFile(), layout, data_format) for key in names}
    exporter = Exporter(options.with_unsafe(False), split, sinks)
    _run(exporter, split, load_chunks, None)
    files = {names[key]: sink.sha256 or "" for key, sink in sinks.items()}
    return _meta(fmt, exporter, split, files, context, labeler_names, layout)


def _check(fmt: str, options: ExportOptions, formats: tuple[str, ...]) -> None:
    if fmt not in formats:
        raise ValueError(FORMAT_UNKNOWN.format(fmt=fmt))
    if fmt == "raw" and options.dataset == "ratings":
        raise ValueError(RAW_RATINGS)


def _file_names(fmt: str) -> tuple[dict[str, str], str]:
    """({sink key: data file name}, the data files' format) of an export in ``fmt``."""
    data_format = "jsonl" if fmt == "raw" else ("parquet" if fmt in ("parquet", "hf") else "jsonl")
    names = {"raw": "rankings.jsonl"} if fmt == "raw" else {s: f"{s}.{data_format}" for s in (TRAIN, TEST)}
    return names, data_format


def _meta(
    fmt: str,
    exporter: Exporter,
    split: Split,
    files: dict[str, str],
    context: dict[str, Any],
    labeler_names: Callable[[list[int]], list[dict[str, Any]]],
    layout: Layout | RatingsLayout,
) -> dict[str, Any]:
    return export_meta(
        fmt=fmt,
        options=exporter.options,
        stats=exporter.stats,
        split=split,
        files=files,
        context=context,
        labelers=labeler_names(sorted(exporter.stats.labelers)),
        columns=["ranking"] if fmt == "raw" else layout.columns,
        conversational=layout.conversational,
    )


def export_stream(
    *,
    options: ExportOptions,
    fmt: str,
    split_name: str,
    prompt_texts: PromptTexts,
    load_chunks: LoadChunks,
    conversational: bool,
    rating_fields: list[dict] | None = None,
) -> Iterator[bytes]:
    """The bytes of one split (``fmt`` jsonl or parquet) or of the raw rankings, yielded after every chunk."""
    _check(fmt, options, ("jsonl", "parquet", "raw"))
    if split_name not in (TRAIN, TEST):
        raise ValueError(STREAM_SPLIT_UNKNOWN.format(split=split_name))
    split = split_prompts(options, prompt_texts)
    layout = layout_for(options, conversational, rating_fields)
    if fmt == "raw":
        buffer = BufferFile()
        sinks = {"raw": Sink(buffer, layout, "jsonl")}
    else:
        buffer = BufferFile()
        other = TEST if split_name == TRAIN else TRAIN
        sinks = {split_name: Sink(buffer, layout, fmt), other: Sink(BufferFile(discard=True), layout, "jsonl")}
    exporter = Exporter(options.with_unsafe(False), split, sinks)
    for _ in _feed(exporter, split, load_chunks, None):
        data = buffer.drain()
        if data:
            yield data
    exporter.close()
    tail = buffer.drain()
    if tail:
        yield tail
