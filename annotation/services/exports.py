"""Preference exports from the database: loads a project's current rankings in chunks of prompts (raw cursor rows,
no model instances) and feeds them to the pure pipeline in ``annotation.exports``. Read-only.

Always left out: gold prompts (they measure labelers), labelers a manager excluded (Membership.excluded) and
superseded ranking versions (only ``is_current``). Other filters are the caller's (``ExportFilters`` here for the
database ones, ``ExportOptions`` for the rest).
"""

import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, QuerySet

from annotation import exports
from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry, Response, ResponseRating
from annotation.services.hygiene import eval_matched_prompt_ids

Progress = Callable[[int, int], None]
OBJECTIVES = ("helpfulness", "harmlessness")
RANK_BASE = 16  # ranks are 1..MAX_RESPONSES (10): response_id * 16 + rank packs both into one integer


@dataclass(frozen=True)
class ExportFilters:
    """Database filters: rankings made under these guideline versions / in this period; prompts of these
    categories / rounds. Empty means no filter."""

    guideline_versions: tuple[int, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    categories: tuple[str, ...] = ()
    rounds: tuple[int, ...] = ()
    # helpfulness: every prompt but the red-team ones; harmlessness: only those (Bai et al. 2022 trained on the two
    # kinds of comparison as separate datasets, so they never mix in one file)
    objective: str = "helpfulness"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "guideline_versions": list(self.guideline_versions),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "categories": list(self.categories),
            "rounds": list(self.rounds),
        }


def _rows(queryset: QuerySet) -> list[tuple]:
    """Raw rows of a values_list queryset: no model instances, no per-row ORM work. Callers bound its size."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _between(field: str, lo: int, hi: int) -> dict[str, int]:
    return {f"{field}__gte": lo, f"{field}__lte": hi}


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _iso(value: Any) -> str | None:
    if value is None or isinstance(value, str):  # SQLite's raw cursor hands back text
        return value
    return value.isoformat()


class _Source:
    """The querysets of one export and the two loaders the pipeline calls. Per-response scores and form values are
    read only when the export uses them (``scores``, ``values``)."""

    def __init__(
        self, project: Project, filters: ExportFilters, raw: bool, scores: bool = False, values: bool = False
    ) -> None:
        self.project, self.raw, self.values = project, raw, values or raw
        self.scores = scores or self.values
        self.excluded_labelers = list(
            Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
        )
        # left out in Python, not by `id NOT IN (...)`: a big evaluation set may match more ids than a query can bind
        self.eval_matched = eval_matched_prompt_ids(project)
        prompts = Prompt.objects.filter(project=project, is_gold=False)
        if filters.categories:
            prompts = prompts.filter(category__in=filters.categories)
        if filters.rounds:
            prompts = prompts.filter(round__in=filters.rounds)
        if filters.objective == "harmlessness":
            prompts = prompts.filter(purpose="red_team")
        else:
            prompts = prompts.exclude(purpose="red_team")
        self.prompts = prompts.order_by("id")
        rankings = Ranking.objects.filter(project=project, is_current=True).exclude(
            labeler_id__in=self.excluded_labelers
        )
        if filters.guideline_versions:
            rankings = rankings.filter(guideline_version__in=filters.guideline_versions)
        if filters.since:
            rankings = rankings.filter(created_at__gte=filters.since)
        if filters.until:
            rankings = rankings.filter(created_at__lte=filters.until)
        self.rankings = rankings

    def prompt_texts(self) -> Iterable[tuple[int, str]]:
        rows = self.prompts.values_list("id", "text").iterator(chunk_size=5000)
        return (row for row in rows if row[0] not in self.eval_matched) if self.eval_matched else rows

    def conversational(self) -> bool:
        return self.prompts.filter(messages__isnull=False).exists()

    def load_chunks(self, ids: np.ndarray) -> Iterator[exports.Chunk]:
        for start in range(0, len(ids), exports.CHUNK_PROMPTS):
            yield self._chunk(ids[start : start + exports.CHUNK_PROMPTS].tolist())

    def _chunk(self, ids: list[int]) -> exports.Chunk:
        """Prompts ids[0]..ids[-1] (by id range: index-friendly on every database), in columns."""
        lo, hi = ids[0], ids[-1]
        wanted = set(ids) - self.eval_matched
        prompts: dict[int, exports.PromptData] = {}
        for pid, text, messages, category in _rows(
            self.prompts.filter(id__range=(lo, hi)).values_list("id", "text", "messages", "category")
        ):
            if pid in wanted:
                prompts[pid] = exports.PromptData(pid, text, _json(messages), category or "", {}, [], {})
        # no join on the project: responses of other projects' (and staged) prompts in the id range are skipped below
        responses = Response.objects.filter(**_between("prompt_id", lo, hi)).order_by("prompt_id", "index")
        for pid, rid, text, model in _rows(responses.values_list("prompt_id", "id", "text", "model_name")):
            if pid in prompts:
                prompts[pid].responses[rid] = text
                if self.raw:
                    prompts[pid].models[rid] = model
        order = sorted(prompts)
        rankings = self._rankings(order, lo, hi)
        # an entry as 2 integers (ranking id; response id and rank packed): a third fewer Python ints to build
        entries = RankingEntry.objects.filter(
            ranking__project=self.project,
            ranking__is_current=True,
            ranking__staged=False,
            **_between("ranking__prompt_id", lo, hi),
        ).order_by()
        packed = entries.annotate(packed=F("response_id") * RANK_BASE + F("rank")).values_list("ranking_id", "packed")
        entry = np.array(_rows(packed), dtype=np.int64).reshape(-1, 2)
        by_id = np.argsort(rankings["id"], kind="stable")
        at = np.searchsorted(rankings["id"], entry[:, 0], sorter=by_id).clip(0, max(len(by_id) - 1, 0))
        found = rankings["id"][by_id[at]] == entry[:, 0] if len(by_id) else np.zeros(len(entry), dtype=bool)
        response, rank = np.divmod(entry[found, 1], RANK_BASE)
        entry_ranking = by_id[at][found]
        score, values = self._ratings(rankings, entry_ranking, response, lo, hi)
        return exports.Chunk(
            prompts=[prompts[pid] for pid in order],
            ranking_id=rankings["id"], ranking_prompt=rankings["prompt"], ranking_labeler=rankings["labeler"],
            ranking_flags=rankings["flags"], ranking_raw=rankings["raw"], ranking_strength=rankings["strength"],
            entry_ranking=entry_ranking, entry_response=response, entry_rank=rank,
            entry_score=score, entry_values=values,
        )  # fmt: skip

    def _ratings(self, rankings: dict[str, Any], entry_ranking: np.ndarray, response: np.ndarray, lo: int, hi: int):
        """(the score of each entry, NaN where none; the form values of each entry, None where none): only what
        the export reads. Raw exports get each ranking's ratings in its raw fields instead."""
        if not self.scores:
            return None, None
        fields = ["ranking_id", "response_id", "score"] + (["values"] if self.values else [])
        rows = _rows(
            ResponseRating.objects.filter(
                ranking__project=self.project, ranking__is_current=True, **_between("ranking__prompt_id", lo, hi)
            ).order_by().values_list(*fields)
        )  # fmt: skip
        found = {(row[0], row[1]): row for row in rows}
        entry_ids = rankings["id"][entry_ranking].tolist()
        keys = list(zip(entry_ids, response.tolist(), strict=True))
        score = np.array(
            [np.nan if (row := found.get(key)) is None or row[2] is None else row[2] for key in keys], dtype=np.float64
        )
        values = [(_json(found[key][3]) if key in found else None) for key in keys] if self.values else None
        if self.raw and rankings["raw"] is not None:
            by_ranking: dict[int, dict[int, Any]] = {}
            for (ranking_id, response_id), row in found.items():
                by_ranking.setdefault(ranking_id, {})[response_id] = _json(row[3])
            for ranking_id, raw in zip(rankings["id"].tolist(), rankings["raw"], strict=True):
                if ranking_id in by_ranking:
                    raw["ratings"] = by_ranking[ranking_id]
        return score, values

    def _rankings(self, order: list[int], lo: int, hi: int) -> dict[str, Any]:
        """The chunk's rankings (after the database filters) as columns, in (prompt, id) order."""
        fields = ["id", "prompt_id", "labeler_id", "flags", "strength"]
        if self.raw:
            fields += ["labeler__username", "version", "guideline_version", "created_at", "rationale",
                       "time_spent_s", "source", "shown_order"]  # fmt: skip
        rankings = self.rankings.filter(**_between("prompt_id", lo, hi)).order_by("prompt_id", "id")
        index = {pid: i for i, pid in enumerate(order)}
        rows = [row for row in _rows(rankings.values_list(*fields)) if row[1] in index]
        raw = None
        if self.raw:
            raw = [{"labeler": row[5], "version": row[6], "guideline_version": row[7], "created_at": _iso(row[8]),
                    "rationale": row[9], "time_spent_s": row[10], "source": row[11], "shown_order": _json(row[12])}
                   | ({"strength": row[4]} if self.project.is_pairwise else {})
                   for row in rows]  # fmt: skip
        return {
            "id": np.array([row[0] for row in rows], dtype=np.int64),
            "prompt": np.array([index[row[1]] for row in rows], dtype=np.int64),
            "labeler": np.array([row[2] for row in rows], dtype=np.int64),
            "flags": [[] if row[3] in ("[]", []) else (_json(row[3]) or []) for row in rows],
            "strength": np.array([np.nan if row[4] is None else row[4] for row in rows], dtype=np.float64),
            "raw": raw,
        }

    def context(self, filters: ExportFilters) -> dict[str, Any]:
        project = self.project
        excluded = get_user_model().objects.filter(pk__in=self.excluded_labelers).order_by("username")
        return {
            "project": {"id": project.pk, "slug": project.slug, "name": project.name, "kind": project.kind},
            "response_form": [
                {"key": f["key"], "type": f["type"], "label": f["label"]} for f in project.response_fields
            ],
            "filters": filters.as_dict(),
            "left_out": {
                "gold_prompts": Prompt.objects.filter(project=project, is_gold=True).count(),
                "eval_set_prompts": len(self.eval_matched),
                "excluded_labelers": list(excluded.values_list("username", flat=True)),
                "rankings_of_excluded_labelers": Ranking.objects.filter(
                    project=project, is_current=True, labeler_id__in=self.excluded_labelers
                ).count(),
            },
        }


def _resolved(project: Project, options: exports.ExportOptions | None) -> exports.ExportOptions:
    """The caller's options, with the project's strength-to-margin mapping unless they name their own."""
    return (options or exports.ExportOptions()).with_strength_margins(project.strength_margin_values)


def _source(project: Project, filters: ExportFilters, fmt: str, options: exports.ExportOptions) -> _Source:
    raw = fmt == "raw"
    return _Source(project, filters, raw=raw, scores=options.needs_scores, values=options.dataset == "ratings")


def labeler_names(ids: list[int], project: Project | None = None) -> list[dict[str, Any]]:
    """Labelers of the exported rankings; with `project`, those no longer its members are marked `removed`."""
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    rows = [{"id": pk, "username": names.get(pk, "")} for pk in ids]
    if project is not None:
        members = set(Membership.objects.filter(project=project, user_id__in=ids).values_list("user_id", flat=True))
        for row in rows:
            row["removed"] = row["id"] not in members
    return rows


def preference_export_create(
    *,
    project: Project,
    out: Path,
    fmt: str = "jsonl",
    options: exports.ExportOptions | None = None,
    filters: ExportFilters | None = None,
    unsafe_path: Path | None = None,
    progress: Progress | None = None,
) -> exports.ExportResult:
    """Write the project's preference export into the directory ``out`` (data files + export_meta.json)."""
    options, filters = _resolved(project, options), filters or ExportFilters()
    source = _source(project, filters, fmt, options)
    return exports.export_files(
        options=options,
        fmt=fmt,
        out=out,
        prompt_texts=source.prompt_texts,
        load_chunks=source.load_chunks,
        conversational=source.conversational(),
        context=source.context(filters),
        labeler_names=partial(labeler_names, project=project),
        unsafe_path=unsafe_path,
        progress=progress,
        rating_fields=project.response_fields,
    )


def preference_export_stream(
    *,
    project: Project,
    fmt: str = "jsonl",
    split: str = exports.TRAIN,
    options: exports.ExportOptions | None = None,
    filters: ExportFilters | None = None,
) -> Iterator[bytes]:
    """The bytes of one split (or, for ``raw``, every ranking), produced chunk by chunk for a streaming response."""
    options, filters = _resolved(project, options), filters or ExportFilters()
    source = _source(project, filters, fmt, options)
    return exports.export_stream(
        options=options,
        fmt=fmt,
        split_name=split,
        prompt_texts=source.prompt_texts,
        load_chunks=source.load_chunks,
        conversational=source.conversational(),
        rating_fields=project.response_fields,
    )


def preference_export_meta(
    *,
    project: Project,
    fmt: str = "jsonl",
    options: exports.ExportOptions | None = None,
    filters: ExportFilters | None = None,
) -> dict[str, Any]:
    """The ``export_meta.json`` that ``preference_export_create`` writes for the same arguments (counts, options,
    split, labelers, agreement and the data files' sha256), computed without writing a file. Runs the whole export:
    as long as the export itself."""
    options, filters = _resolved(project, options), filters or ExportFilters()
    source = _source(project, filters, fmt, options)
    return exports.export_meta_only(
        options=options,
        fmt=fmt,
        prompt_texts=source.prompt_texts,
        load_chunks=source.load_chunks,
        conversational=source.conversational(),
        context=source.context(filters),
        labeler_names=partial(labeler_names, project=project),
        rating_fields=project.response_fields,
    )


def preference_export_archive(
    *,
    project: Project,
    options: exports.ExportOptions | None = None,
    filters: ExportFilters | None = None,
    fmt: str = "jsonl",
) -> Path:
    """A zip of the export in a new temporary directory; the caller removes ``path.parent`` once it is sent.
    ``jsonl`` / ``parquet`` / ``raw`` / ``hf``: the data files (for ``hf`` the saved DatasetDict's folders) and
    export_meta.json at the top. ``openrlhf`` / ``verl``: the hand-off bundle
    in a folder ``<slug>-<format>/``, its scripts executable once unzipped."""
    work = Path(tempfile.mkdtemp(prefix="export-"))
    try:
        bundle = fmt in exports.BUNDLE_FORMATS
        out = work / (f"{project.slug}-{fmt}" if bundle else "export")
        result = preference_export_create(project=project, out=out, fmt=fmt, options=options, filters=filters)
        archive = work / (f"{project.slug}-{fmt}.zip" if bundle else f"{project.slug}-preferences.zip")
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            # Every file under the export folder: the data files, export_meta.json, and for `hf` the dataset's
            # folders (arrow files, dataset_dict.json). A bundle keeps its folder; zip entries keep file modes.
            for path in sorted(p for p in result.out.rglob("*") if p.is_file()):
                name = path.relative_to(result.out).as_posix()
                zf.write(path, arcname=f"{out.name}/{name}" if bundle else name)
        shutil.rmtree(result.out)
        return archive
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
