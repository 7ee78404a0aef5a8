"""Where rows go: files (JSONL, Parquet, raw JSONL) hashed while they are written, or an in-memory buffer that a
streaming HTTP response drains after every chunk. Each sink holds one batch at a time: memory stays flat."""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from annotation.exports.formats import Layout, RatingsLayout
from annotation.exports.pairs import Batch


class HashingFile:
    """A write-only binary file that keeps the sha256 and size of what went through it.

    Hashing and writing happen in a background thread (both release the GIL), so they overlap with building the
    next batch; the queue holds at most a few batches, which keeps memory flat."""

    _DONE = object()

    def __init__(self, target: BinaryIO, depth: int = 2) -> None:
        self._target = target
        self._sha = hashlib.sha256()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="export-writer", daemon=True)
        self._thread.start()
        self.size = 0
        self.closed = False

    def _drain(self) -> None:
        while (data := self._queue.get()) is not self._DONE:
            if self._error is None:
                try:
                    self._sha.update(data)
                    self._target.write(data)
                except BaseException as exc:  # surfaced by the next write() or close()
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: Any) -> int:
        self._raise()
        data = data if isinstance(data, bytes) else bytes(data)  # the caller may reuse its buffer
        if data:
            self._queue.put(data)
            self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raise()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(self._DONE)
            self._thread.join()
            self._target.close()
            self._raise()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class NullFile:
    """A target that keeps nothing: behind a ``HashingFile`` it gives a file's sha256 and size without the file."""

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes

    def close(self) -> None:
        pass


class BufferFile:
    """Collects written bytes until ``drain`` hands them over (the streaming response's source); with
    ``discard=True`` it only counts them (the split a stream does not return)."""

    def __init__(self, discard: bool = False) -> None:
        self._parts: list[bytes] = []
        self.discard, self.size, self.closed = discard, 0, False

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.size += size
        if not self.discard:
            self._parts.append(bytes(data))
        return size

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Sink:
    """Rows of one split (or the unsafe file) written as JSONL or Parquet; ``rows`` counts them."""

    def __init__(self, target: BinaryIO | BufferFile, layout: Layout | RatingsLayout, fmt: str = "jsonl") -> None:
        self.layout, self.format, self.rows = layout, fmt, 0
        self.file = target if isinstance(target, BufferFile) else HashingFile(target)
        self._parquet = pq.ParquetWriter(self.file, layout.schema()) if fmt == "parquet" else None

    def write(self, batch: Batch) -> None:
        self.rows += len(batch)
        if self._parquet is not None:
            if len(batch):
                self._parquet.write_table(self.layout.arrow(batch))
        else:
            self.file.write(self.layout.jsonl(batch))

    def write_bytes(self, data: bytes) -> None:
        """Raw lines (format ``raw``): already serialised."""
        self.file.write(data)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.file.close()

    @property
    def sha256(self) -> str | None:
        return self.file.sha256 if isinstance(self.file, HashingFile) else None


def file_sink(path: Path, layout: Layout | RatingsLayout, fmt: str) -> Sink:
    path.parent.mkdir(parents=True, exist_ok=True)
    return Sink(path.open("wb"), layout, fmt)


def save_hf_dataset(parquet_files: dict[str, Path], out: Path, cache_dir: Path) -> dict[str, str]:
    """A Hugging Face ``DatasetDict`` (one split per file) saved with ``save_to_disk``; returns the sha256 of each
    Arrow data file written. ``load_dataset`` memory-maps the Parquet into Arrow, so memory stays flat. An empty
    split (``load_dataset`` refuses those) is built from the empty Parquet table, keeping its schema."""
    from datasets import Dataset, DatasetDict, load_dataset  # heavy import, only for this format

    splits, shards = {}, {}
    for split, path in parquet_files.items():
        if pq.ParquetFile(path).metadata.num_rows:
            splits[split] = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(cache_dir))
        else:  # one (empty) shard: with none, load_from_disk fails
            splits[split], shards[split] = Dataset(pq.read_table(path)), 1
    DatasetDict(splits).save_to_disk(str(out), num_shards=shards)
    return {str(p.relative_to(out)): file_sha256(p) for p in sorted(out.rglob("*.arrow"))}


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
