"""Preference dataset export: rankings -> pairs (by strategy) -> train/test split -> JSONL / Parquet / HF datasets,
or a hand-off bundle for OpenRLHF or verl (bundles/).

Pure Python (numpy, pyarrow, orjson), no Django: the service in ``annotation/services/exports.py`` loads rankings
from the database into ``PromptData`` chunks and calls ``export_files`` or ``export_stream``. See docs/export.md.
"""

from annotation.exports.bundles import BUNDLE_FORMATS, write_bundle
from annotation.exports.dedup import lsh_bands, lsh_candidates, near_duplicate_groups, shingle_hashes, signatures
from annotation.exports.formats import Layout, RatingsBatch, RatingsLayout, layout_for, raw_line
from annotation.exports.meta import META_FILE, content_hash, export_meta, git_commit
from annotation.exports.options import (
    COLUMNS,
    DATASETS,
    DEFAULT_STRENGTH_MARGINS,
    FORMATS,
    MARGINS,
    PAIRS_FROM,
    SCHEMA_VERSION,
    STRATEGIES,
    TIES,
    ExportOptions,
    parse_flag_list,
    parse_margins,
)
from annotation.exports.pairs import Batch, Counts, Long, all_pairs, pairs_from_ranks, pairs_majority, ranking_pairs
from annotation.exports.pipeline import Exporter, ExportStats, chunk_table, consensus_by_prompt
from annotation.exports.records import Chunk, PromptData, RankingData
from annotation.exports.run import (
    CHUNK_PROMPTS,
    ExportResult,
    export_files,
    export_meta_only,
    export_stream,
    split_prompts,
)
from annotation.exports.split import MIN_TEST_GROUPS, TEST, TRAIN, PromptSplitter, Split, min_test_groups, text_hash
from annotation.exports.writers import BufferFile, HashingFile, NullFile, Sink, file_sha256, save_hf_dataset

__all__ = [
    "BUNDLE_FORMATS",
    "CHUNK_PROMPTS",
    "COLUMNS",
    "DATASETS",
    "DEFAULT_STRENGTH_MARGINS",
    "FORMATS",
    "MARGINS",
    "META_FILE",
    "PAIRS_FROM",
    "SCHEMA_VERSION",
    "STRATEGIES",
    "TEST",
    "TIES",
    "TRAIN",
    "Batch",
    "BufferFile",
    "Chunk",
    "Counts",
    "ExportOptions",
    "ExportResult",
    "ExportStats",
    "Exporter",
    "HashingFile",
    "NullFile",
    "Layout",
    "MIN_TEST_GROUPS",
    "PromptData",
    "PromptSplitter",
    "RankingData",
    "RatingsBatch",
    "RatingsLayout",
    "Sink",
    "Split",
    "chunk_table",
    "consensus_by_prompt",
    "content_hash",
    "export_files",
    "export_meta",
    "export_meta_only",
    "export_stream",
    "file_sha256",
    "git_commit",
    "layout_for",
    "lsh_bands",
    "lsh_candidates",
    "min_test_groups",
    "near_duplicate_groups",
    "all_pairs",
    "Long",
    "pairs_from_ranks",
    "pairs_majority",
    "parse_flag_list",
    "parse_margins",
    "ranking_pairs",
    "raw_line",
    "save_hf_dataset",
    "shingle_hashes",
    "signatures",
    "split_prompts",
    "text_hash",
    "write_bundle",
]
