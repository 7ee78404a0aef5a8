"""Import prompts with candidate responses (and pairwise preference files) into a project, all-or-nothing,
in short transactions that never hold the database's write lock for long (see `prompts_import`)."""

import io
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from annotation.importing import ParseReport, PromptRecord, iter_records, scan_file
from annotation.models import ImportBatch, Membership, Project, Prompt, Ranking, RankingEntry, Response
from annotation.services.hygiene import ImportHygiene
from annotation.services.projects import membership_set

logger = logging.getLogger(__name__)

BATCH_PROMPTS = 100  # prompts (with their responses) per write transaction: tens of milliseconds on SQLite
STALE_AFTER = timedelta(minutes=10)  # a staging import that wrote nothing for this long has lost its process
MAX_ERROR_CHARS = 10_000

IMPORTED_ANNOTATOR = "imported"
IMPORT_TOO_LARGE = "The file is {size:,} bytes; the limit is {limit:,} bytes."
IMPORT_EMPTY = "The file holds no prompts."
IMPORT_CHANGED = "The file changed while it was being imported; nothing was imported."
IMPORT_CONCURRENT = (
    "line {line}: the same prompt is being imported into this project by another import that has not finished; "
    "nothing was imported (import this file again when the other import is done)."
)
IMPORT_STOPPED = "The import was stopped (no progress for too long); nothing was imported."
IMPORT_ALL_REFUSED = "Every prompt of the file was refused by the project's hygiene checks; nothing was imported."
IMPORT_REFUSED = (
    "{n} line(s) refused by the project's hygiene checks; nothing was imported (the project imports all or nothing: "
    "fix these lines, or import with on_refusal=per_line to import the others)."
)
ON_REFUSAL = ("all_or_nothing", "per_line")
IMPORT_STALE = "Import stopped: no progress for {minutes} minutes (its process ended); its staged rows were deleted."


@dataclass
class ImportResult:
    kind: str
    prompts_created: int = 0
    responses_created: int = 0
    rankings_created: int = 0
    duplicates_skipped: int = 0
    prompts_refused: int = 0
    prompts_redacted: int = 0
    warnings: list[str] = field(default_factory=list)
    import_batch: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class ImportFailed(ValidationError):
    """Carries every bad line ("line N: reason"); nothing was written."""

    def __init__(self, lines: list[str]):
        super().__init__(lines)
        self.lines = lines


def imported_annotator() -> AbstractUser:
    """The inactive user that owns rankings which came in with an imported preference file."""
    user, created = get_user_model().objects.get_or_create(username=IMPORTED_ANNOTATOR, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def prompts_import(
    *,
    project: Project,
    filename: str,
    data: bytes | None = None,
    file: BinaryIO | None = None,
    kind: str = "auto",
    created_by: AbstractUser | None = None,
    on_refusal: str | None = None,
) -> ImportResult:
    """Import a file (`data`, or a seekable binary `file` read as a stream), all or nothing, without blocking labelers.

    1. Validate: the whole file is read once, a line at a time; any bad line means nothing is written.
    2. Stage: the records are read again and written `BATCH_PROMPTS` prompts per transaction (each a few tens of
       milliseconds, so a labeler's submit waits at most that long for the database), as `staged` rows of an
       `ImportBatch`: invisible to every labeler, count and export until
    3. Commit: one short transaction makes the batch's rows visible together.
    A failure while staging or committing deletes the staged rows and marks the batch failed with the reason.
    Memory holds one batch of records and a digest per record (duplicates), never the file.

    Hygiene (services/hygiene.py) decides every new line in the first pass: a line refused (cap per `author`,
    personal information under a `refuse` policy, near duplicate, evaluation prompt) fails the whole file under
    `all_or_nothing`, or is left out and reported (`line N: refused ...`) under `per_line` (`on_refusal`, default
    the project's `import_refusals`); personal information under `redact` is replaced before it is written."""
    on_refusal = on_refusal or project.import_refusals
    if on_refusal not in ON_REFUSAL:
        raise ImportFailed([f"on_refusal must be one of {', '.join(ON_REFUSAL)}."])
    stream = io.BytesIO(data or b"") if file is None else file
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportFailed([IMPORT_TOO_LARGE.format(size=size, limit=settings.IMPORT_MAX_BYTES)])
    stream.seek(0)
    hygiene = ImportHygiene.for_project(project)
    report = scan_file(stream, filename, kind, on_record=hygiene.check)
    if report.errors:
        raise ImportFailed(report.error_lines())
    if not report.n_records and not report.warnings:
        raise ImportFailed([IMPORT_EMPTY])
    if hygiene.refused and on_refusal == "all_or_nothing":
        raise ImportFailed([IMPORT_REFUSED.format(n=len(hygiene.refused)), *hygiene.refusal_lines()])
    if report.n_records and len(hygiene.refused) == report.n_records:
        raise ImportFailed([IMPORT_ALL_REFUSED, *hygiene.refusal_lines()])
    import_batches_sweep_stale()
    batch = ImportBatch.objects.create(
        project=project, created_by=created_by, filename=filename[:255], kind=report.kind
    )
    try:
        stream.seek(0)
        result = _stage(batch, stream, filename, report, hygiene)
        _commit(batch, result)
    except BaseException as exc:
        reason = "; ".join(exc.lines) if isinstance(exc, ImportFailed) else f"{type(exc).__name__}: {exc}"
        try:
            import_batch_discard(batch=batch, error=reason)
        except Exception:  # the sweep removes the staged rows later; the caller gets the first error
            logger.exception("Could not discard the staged rows of import %s", batch.pk)
        raise
    hygiene.record_refusals(created_by)
    return result


def _stage(
    batch: ImportBatch, stream: BinaryIO, filename: str, scanned: ParseReport, hygiene: ImportHygiene
) -> ImportResult:
    result = ImportResult(kind=scanned.kind, warnings=[f"line {n}: {m}" for n, m in scanned.warnings])
    result.import_batch = batch.pk
    result.prompts_refused, result.prompts_redacted = len(hygiene.refused), len(hygiene.redacted)
    pairwise = scanned.kind == "pairwise"
    stage = _Stage(
        batch=batch,
        annotator=imported_annotator() if pairwise else None,
        guideline=batch.project.guidelines.order_by("-version").values_list("version", flat=True).first(),
    )
    again = ParseReport()
    chunk: list[PromptRecord] = []
    for record in iter_records(stream, filename, scanned.kind, again):
        again.n_records += 1
        record = hygiene.apply(record)
        if record is None:  # refused (per_line): reported below
            continue
        chunk.append(record)
        if len(chunk) >= BATCH_PROMPTS:
            _write(stage, chunk, result)
            chunk = []
    if again.errors or again.n_records != scanned.n_records:
        raise ImportFailed([IMPORT_CHANGED, *again.error_lines()])
    if chunk:
        _write(stage, chunk, result)
    result.warnings += stage.project_duplicates
    result.duplicates_skipped = sum("duplicate" in w for w in result.warnings)
    result.warnings += hygiene.redaction_lines() + hygiene.refusal_lines()
    return result


@dataclass
class _Stage:
    batch: ImportBatch
    annotator: AbstractUser | None
    guideline: int | None
    project_duplicates: list[str] = field(default_factory=list)


def _write(stage: _Stage, records: list[PromptRecord], result: ImportResult) -> None:
    """One batch: its rows are built here, outside the transaction, so the transaction only checks and inserts."""
    started = time.monotonic()
    pairwise = stage.annotator is not None
    prompts = [_prompt(stage.batch.project, r, stage.batch, ranked=pairwise) for r in records]
    responses = None if pairwise else _response_rows(records)
    _insert(stage, records, prompts, responses, result)
    # Leave the database and the CPU to the labelers for a while: an import writing back to back holds SQLite's
    # write lock most of the time and starves their requests (bench/import_load.py, docs/benchmarks.md).
    pause = settings.IMPORT_PAUSE_RATIO * (time.monotonic() - started)
    if pause > 0:
        time.sleep(pause)


_RESPONSE_COLUMNS = ("prompt_id", "text", "model_name", "index", "metadata", "created_at")


def _response_rows(records: list[PromptRecord]) -> list[list[tuple]]:
    """Per record, its responses as database values without the prompt id (known once the prompt is inserted)."""
    metadata = Response._meta.get_field("metadata")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return [
        [
            (resp.text, resp.model_name, i, metadata.get_db_prep_save(resp.metadata, connection), now)
            for i, resp in enumerate(record.responses)
        ]
        for record in records
    ]


@transaction.atomic
def _insert(
    stage: _Stage,
    records: list[PromptRecord],
    prompts: list[Prompt],
    responses: list[list[tuple]] | None,
    result: ImportResult,
) -> None:
    """The short transaction of one batch: skip prompts already in the project, insert the rest staged with their
    responses (and imported rankings). Responses go in with one executemany of prepared rows: building a
    model instance per row here would hold the write lock several times longer."""
    batch, project = stage.batch, stage.batch.project
    existing = dict(
        Prompt.all_objects.filter(project=project, content_hash__in=[p.content_hash for p in prompts], round=1)
        .values_list("content_hash", "import_batch__status")
    )  # fmt: skip
    fresh = []
    for i, record in enumerate(records):
        if record.content_hash not in existing:
            fresh.append(i)
        elif existing[record.content_hash] == ImportBatch.Status.STAGING:
            raise ImportFailed([IMPORT_CONCURRENT.format(line=record.line)])
        else:
            stage.project_duplicates.append(
                f"line {record.line}: exact duplicate of a prompt already in the project: skipped."
            )
    created = Prompt.all_objects.bulk_create([prompts[i] for i in fresh])
    result.prompts_created += len(created)
    if responses is not None:
        rows = [(prompt.pk, *row) for prompt, i in zip(created, fresh, strict=True) for row in responses[i]]
        table, quote = Response._meta.db_table, connection.ops.quote_name
        columns = ", ".join(quote(column) for column in _RESPONSE_COLUMNS)
        sql = f"INSERT INTO {quote(table)} ({columns}) VALUES ({', '.join(['%s'] * len(_RESPONSE_COLUMNS))})"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        result.responses_created += len(rows)
    else:
        fresh_records = [records[i] for i in fresh]
        created_responses = Response.objects.bulk_create(
            Response(prompt=p, text=resp.text, model_name=resp.model_name, index=i, metadata=resp.metadata)
            for p, r in zip(created, fresh_records, strict=True)
            for i, resp in enumerate(r.responses)
        )
        result.responses_created += len(created_responses)
        if created:
            result.rankings_created += _imported_rankings(stage, created, fresh_records, created_responses)
    batch.prompts_written = result.prompts_created
    batch.save(update_fields=["prompts_written", "updated_at"])


def _commit(batch: ImportBatch, result: ImportResult) -> None:
    """The one short transaction that makes the whole import visible (two UPDATEs on indexed batch rows)."""
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update().select_related("project").get(pk=batch.pk)
        if batch.status != ImportBatch.Status.STAGING:  # swept as stale meanwhile: its rows are gone
            raise ImportFailed([IMPORT_STOPPED])
        project, staged = batch.project, Prompt.all_objects.filter(import_batch=batch, staged=True)
        if result.rankings_created:
            membership_set(project=project, user=imported_annotator(), role=Membership.Role.LABELER)
            Ranking.all_objects.filter(staged=True, prompt__import_batch=batch).update(staged=False)
            # the overlap may have changed while the batch was staged
            staged.filter(ranking_count__lt=project.overlap).update(is_complete=False)
            staged.filter(ranking_count__gte=project.overlap).update(is_complete=True)
        staged.update(staged=False)
        batch.status = ImportBatch.Status.COMMITTED
        batch.prompts_created, batch.responses_created = result.prompts_created, result.responses_created
        batch.rankings_created, batch.duplicates_skipped = result.rankings_created, result.duplicates_skipped
        batch.finished_at = timezone.now()
        batch.save()


def import_batch_discard(*, batch: ImportBatch, error: str) -> int:
    """Delete a batch's staged rows (a few hundred prompts per transaction) and mark it failed with `error`."""
    deleted = 0
    while True:
        ids = list(
            Prompt.all_objects.filter(import_batch=batch, staged=True).values_list("id", flat=True)[:BATCH_PROMPTS]
        )
        if not ids:
            break
        with transaction.atomic():
            Prompt.all_objects.filter(id__in=ids).delete()
        deleted += len(ids)
    ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.STAGING).update(
        status=ImportBatch.Status.FAILED, error=error[:MAX_ERROR_CHARS], finished_at=timezone.now()
    )
    return deleted


def import_batches_sweep_stale(*, max_age: timedelta = STALE_AFTER) -> int:
    """Fail the imports that stopped writing (their process died): staged rows deleted, reason recorded."""
    stale = ImportBatch.objects.filter(status=ImportBatch.Status.STAGING, updated_at__lt=timezone.now() - max_age)
    batches = list(stale)
    for batch in batches:
        import_batch_discard(batch=batch, error=IMPORT_STALE.format(minutes=int(max_age.total_seconds() // 60)))
    return len(batches)


def _prompt(project: Project, record: PromptRecord, batch: ImportBatch, *, ranked: bool) -> Prompt:
    return Prompt(
        project=project,
        import_batch=batch,
        staged=True,
        ranking_count=1 if ranked else 0,  # a pairwise line comes with its imported ranking
        is_complete=ranked and project.overlap <= 1,
        text=record.text,
        messages=record.messages,
        category=record.category,
        source=record.source,
        external_id=record.external_id,
        metadata=record.metadata,
        content_hash=record.content_hash,
    )


def _imported_rankings(stage: _Stage, prompts: list[Prompt], records: list[PromptRecord], responses) -> int:
    """One staged ranking per pair: the chosen response rank 1, the rejected one rank 2, by the 'imported'
    annotator (a member of the project from the commit on)."""
    by_prompt: dict[int, list[Response]] = {}
    for response in responses:
        by_prompt.setdefault(response.prompt_id, []).append(response)
    rankings = Ranking.all_objects.bulk_create(
        Ranking(
            project=stage.batch.project,
            prompt=prompt,
            labeler=stage.annotator,
            guideline_version=stage.guideline,
            num_responses=2,
            shown_order=[r.id for r in by_prompt[prompt.id]],
            source=Ranking.Source.IMPORTED,
            staged=True,
        )
        for prompt in prompts
    )
    RankingEntry.objects.bulk_create(
        RankingEntry(
            ranking=ranking,
            response=response,
            rank=1 if i == record.chosen_index else 2,
            shown_position=i,
            num_responses=2,
        )
        for ranking, record in zip(rankings, records, strict=True)
        for i, response in enumerate(by_prompt[ranking.prompt_id])
    )
    return len(rankings)
