"""Import prompts with candidate responses (and pairwise preference files) into a project, all-or-nothing."""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from annotation.importing import ParseReport, PromptRecord, parse_file
from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry, Response
from annotation.services.projects import membership_set

IMPORTED_ANNOTATOR = "imported"
IMPORT_TOO_LARGE = "The file is {size:,} bytes; the limit is {limit:,} bytes."
IMPORT_EMPTY = "The file holds no prompts."


@dataclass
class ImportResult:
    kind: str
    prompts_created: int = 0
    responses_created: int = 0
    rankings_created: int = 0
    duplicates_skipped: int = 0
    warnings: list[str] = field(default_factory=list)

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


def prompts_import(*, project: Project, data: bytes, filename: str, kind: str = "auto") -> ImportResult:
    """Parse and validate the whole file, then write it in one transaction; any bad line means nothing is written."""
    if len(data) > settings.IMPORT_MAX_BYTES:
        raise ImportFailed([IMPORT_TOO_LARGE.format(size=len(data), limit=settings.IMPORT_MAX_BYTES)])
    report = parse_file(data, filename, kind)
    if report.errors:
        raise ImportFailed(report.error_lines())
    if not report.records and not report.warnings:
        raise ImportFailed([IMPORT_EMPTY])
    return _write(project, report)


@transaction.atomic
def _write(project: Project, report: ParseReport) -> ImportResult:
    result = ImportResult(kind=report.kind, warnings=[f"line {n}: {m}" for n, m in report.warnings])
    existing = set(
        Prompt.objects.filter(
            project=project, content_hash__in=[r.content_hash for r in report.records], round=1
        ).values_list("content_hash", flat=True)
    )
    records = []
    for record in report.records:
        if record.content_hash in existing:
            result.warnings.append(f"line {record.line}: exact duplicate of a prompt already in the project: skipped.")
        else:
            records.append(record)
    result.duplicates_skipped = sum("duplicate" in w for w in result.warnings)
    prompts = Prompt.objects.bulk_create(_prompt(project, r) for r in records)
    responses = Response.objects.bulk_create(
        Response(prompt=p, text=resp.text, model_name=resp.model_name, index=i, metadata=resp.metadata)
        for p, r in zip(prompts, records, strict=False)
        for i, resp in enumerate(r.responses)
    )
    result.prompts_created, result.responses_created = len(prompts), len(responses)
    if report.kind == "pairwise" and prompts:
        result.rankings_created = _imported_rankings(project, prompts, records, responses)
    return result


def _prompt(project: Project, record: PromptRecord) -> Prompt:
    return Prompt(
        project=project,
        text=record.text,
        messages=record.messages,
        category=record.category,
        source=record.source,
        external_id=record.external_id,
        metadata=record.metadata,
        content_hash=record.content_hash,
    )


def _imported_rankings(project: Project, prompts: list[Prompt], records: list[PromptRecord], responses) -> int:
    """One ranking per pair: the chosen response rank 1, the rejected one rank 2, by the 'imported' annotator."""
    annotator = imported_annotator()
    membership_set(project=project, user=annotator, role=Membership.Role.LABELER)
    guideline = project.guidelines.order_by("-version").values_list("version", flat=True).first()
    by_prompt: dict[int, list[Response]] = {}
    for response in responses:
        by_prompt.setdefault(response.prompt_id, []).append(response)
    rankings = Ranking.objects.bulk_create(
        Ranking(
            project=project,
            prompt=prompt,
            labeler=annotator,
            guideline_version=guideline,
            num_responses=2,
            shown_order=[r.id for r in by_prompt[prompt.id]],
            source=Ranking.Source.IMPORTED,
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
        for ranking, record in zip(rankings, records, strict=False)
        for i, response in enumerate(by_prompt[ranking.prompt_id])
    )
    ids = [p.id for p in prompts]
    for start in range(0, len(ids), 5000):  # stay under the database's limit on query parameters
        chunk = ids[start : start + 5000]
        Prompt.objects.filter(id__in=chunk).update(ranking_count=F("ranking_count") + 1)
        Prompt.objects.filter(id__in=chunk, ranking_count__gte=project.overlap).update(is_complete=True)
    return len(rankings)
