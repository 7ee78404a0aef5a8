"""Fixtures for the pure export tests: plain ``PromptData``, no database (they also run with ``-p no:django``)."""

from pathlib import Path

import pytest

from annotation.exports import ExportOptions, PromptData, RankingData, export_files


@pytest.fixture(autouse=True)
def _fast_passwords():
    """Overrides tests/conftest.py's autouse fixture of this name, which needs pytest-django's ``settings``."""
    yield


def prime_prompt() -> PromptData:
    """A 3-response prompt ranked by three labelers (the golden-output example of docs/export.md)."""
    return PromptData(
        id=1, text="Name a prime number.", messages=None, category="math",
        responses={11: "2", 12: "4", 13: "9"},
        rankings=[
            RankingData(id=101, labeler=1, ranks={11: 1, 12: 2, 13: 3}),
            RankingData(id=102, labeler=2, ranks={11: 1, 12: 3, 13: 2}),
            RankingData(id=103, labeler=3, ranks={11: 2, 12: 1, 13: 3}),
        ],
    )  # fmt: skip


def run_export(tmp_path: Path, prompts: list[PromptData], fmt: str = "jsonl", chunk: int = 1000, **options):
    """Export `prompts` (all in one chunk by default) with these options; returns the ExportResult."""

    def load_chunks(ids):
        by_id = {p.id: p for p in prompts}
        ordered = [by_id[int(i)] for i in ids]
        return [ordered[i : i + chunk] for i in range(0, len(ordered), chunk)]

    unsafe_path = options.pop("unsafe_path", None)
    rating_fields = options.pop("rating_fields", None)
    return export_files(
        options=ExportOptions(**({"test_ratio": 0.0} | options)),
        fmt=fmt,
        out=tmp_path / "out",
        prompt_texts=lambda: [(p.id, p.text) for p in prompts],
        load_chunks=load_chunks,
        conversational=any(p.messages for p in prompts),
        context={"project": {"slug": "test"}},
        labeler_names=lambda ids: [{"id": i, "username": f"labeler{i}"} for i in ids],
        unsafe_path=unsafe_path,
        rating_fields=rating_fields,
    )
