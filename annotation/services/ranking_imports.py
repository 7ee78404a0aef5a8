"""Import existing multi-labeler rankings (e.g. WMT MQM side-by-side ratings) into a project, all-or-nothing."""

import hashlib
import json
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.db.models import Q

from annotation import hygiene
from annotation.importing import PromptRecord
from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry, Response
from annotation.ranking_import import RankedItem, parse_rankings
from annotation.services.hygiene import ImportHygiene
from annotation.services.imports import ImportFailed
from annotation.services.projects import membership_set

IMPORT_REFUSED_ALL = "{n} item(s) refused by the project's hygiene checks; nothing was imported."


@dataclass
class RankingImportResult:
    prompts_created: int = 0
    responses_created: int = 0
    rankings_created: int = 0
    labelers_created: int = 0
    items_skipped: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def annotator_username(annotator_id: str) -> str:
    """A valid Django username for an external annotator id ('en-de:rater10' -> 'en-de_rater10')."""
    return re.sub(r"[^\w.@+-]", "_", annotator_id)[:150]


def _annotators(project: Project, names: set[str]) -> tuple[dict[str, AbstractUser], int]:
    """External annotators become inactive users (they cannot log in) and labelers of the project."""
    users, created = {}, 0
    for name in sorted(names):
        user, new = get_user_model().objects.get_or_create(username=annotator_username(name))
        if new:
            user.is_active = False
            user.set_unusable_password()
            user.save()
            created += 1
        membership_set(project=project, user=user, role=Membership.Role.LABELER)
        users[name] = user
    return users, created


def _content_hash(item: RankedItem) -> str:
    content = {"item": item.item_id, "prompt": item.prompt, "outputs": item.outputs}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def rankings_import(*, project: Project, data: bytes) -> RankingImportResult:
    """Parse the whole file; any bad line raises ImportFailed with every bad line and nothing is written."""
    items, report = parse_rankings(data)
    if report.errors:
        raise ImportFailed(report.error_lines())
    if not items:
        raise ImportFailed(["The file holds no rankings."])
    _hygiene(project, items)
    return _write(project, items)


def _hygiene(project: Project, items: list[RankedItem]) -> None:
    """The new items' prompts pass the project's hygiene checks (services/hygiene.py): any refusal fails the file
    (this import is all or nothing only); personal information is redacted in place under `redact`."""
    known = set(Prompt.objects.filter(project=project).values_list("content_hash", flat=True))
    checks = ImportHygiene.for_project(project)
    for item in items:
        if _content_hash(item) in known:
            continue  # already imported: skipped by _write, as before
        if checks.policy.pii == hygiene.PII_REDACT:  # first, so that an item imported (redacted) before is known
            item.prompt = hygiene.redact(
                item.prompt, hygiene.find_pii(item.prompt, phone_region=checks.policy.phone_region)
            )
        if _content_hash(item) in known:
            continue  # imported (redacted) before
        checks.check(
            PromptRecord(line=item.line, text=item.prompt, messages=None, responses=[], metadata=item.metadata)
        )
    if checks.refused:
        raise ImportFailed([IMPORT_REFUSED_ALL.format(n=len(checks.refused)), *checks.refusal_lines()])


@transaction.atomic
def _write(project: Project, items: list[RankedItem]) -> RankingImportResult:
    result = RankingImportResult()
    hashes = {_content_hash(item): item for item in items}
    existing = set(Prompt.objects.filter(Q(project=project) & Q(content_hash__in=hashes)).values_list("content_hash"))
    existing = {h for (h,) in existing}
    fresh = [item for h, item in hashes.items() if h not in existing]
    result.items_skipped = len(items) - len(fresh)
    users, result.labelers_created = _annotators(project, {a for item in fresh for _, a, _, _ in item.judgments})
    guideline = project.guidelines.order_by("-version").values_list("version", flat=True).first()
    for item in fresh:
        _write_item(project, item, users, guideline, result)
    return result


def _write_item(project: Project, item: RankedItem, users: dict, guideline: int | None, result) -> None:
    prompt = Prompt.objects.create(
        project=project, text=item.prompt, external_id=item.item_id[:200], metadata=item.metadata,
        content_hash=_content_hash(item), source="import", ranking_count=len(item.judgments),
        is_complete=len(item.judgments) >= project.overlap,
    )  # fmt: skip
    # Real data has identical texts from different systems: each output stays its own response.
    responses = Response.objects.bulk_create(
        Response(prompt=prompt, text=text, model_name=name[:200], index=i)
        for i, (name, text) in enumerate(item.outputs.items())
    )
    by_name = {r.model_name: r for r in responses}
    order = [r.id for r in responses]
    for _, annotator, ranks, extra in item.judgments:
        ranking = Ranking.objects.create(
            project=project, prompt=prompt, labeler=users[annotator], guideline_version=guideline,
            num_responses=len(responses), shown_order=order, source=Ranking.Source.IMPORTED, metadata=extra,
        )  # fmt: skip
        RankingEntry.objects.bulk_create(
            RankingEntry(ranking=ranking, response=by_name[name[:200]], rank=rank,
                         shown_position=order.index(by_name[name[:200]].id), num_responses=len(responses))
            for name, rank in ranks.items()
        )  # fmt: skip
        result.rankings_created += 1
    result.prompts_created += 1
    result.responses_created += len(responses)
