"""Prompt hygiene and prompt writing: the project's policy, its indexes, labelers' written prompts and evaluation
sets. The decisions themselves are pure (`annotation.hygiene`); imports call `ImportHygiene` (services/imports.py).

Which prompts are checked: written prompts and imported lines. The copies `responses_generate` (rlhf/services/loop.py)
makes for a new labeling round are not new prompts (the same text, already checked when it entered the project),
so they are not checked again, nor counted against a cap, nor indexed twice.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.db.models.fields.json import KT

from annotation import hygiene
from annotation.importing import LineError, PromptRecord, _prompt, _text, iter_lines
from annotation.models import WRITING_CATEGORIES, EvalSet, Project, Prompt, PromptRefusal
from annotation.selectors import role_in_project

WRITING_OFF = "This project does not ask for written prompts."
WRITING_CLOSED = "This project is closed: it takes no new prompts."
WRITING_CATEGORY = "Choose a category: {choices}."
WRITING_NOT_MEMBER = "Only the project's labelers and managers write prompts for it."
EVAL_EMPTY = "The evaluation set file holds no prompts."
EVAL_TOO_LARGE = "The file is {size:,} bytes; the limit is {limit:,} bytes."
EVAL_BAD_LINES = "The evaluation set file has bad lines; nothing was stored."
MAX_EVAL_PROMPTS = 100_000


class PromptRefused(ValidationError):
    """A prompt the hygiene checks refused: `reasons` says why, and nothing but a refusal record was stored."""

    def __init__(self, reasons: list[hygiene.Reason]):
        super().__init__([f"Refused: {r.message}" for r in reasons], code="refused")
        self.reasons = reasons


def project_policy(project: Project) -> hygiene.Policy:
    return hygiene.Policy(
        cap=project.prompt_cap,
        pii=project.pii_policy,
        near_dup_threshold=project.near_dup_threshold,
        phone_region=settings.HYGIENE_PHONE_REGION,
    )


def _original_prompts(project: Project):
    """The project's prompts without the copies of later rounds (same texts: `metadata.source_prompt_id`)."""
    return Prompt.objects.filter(project=project).exclude(metadata__has_key="source_prompt_id")


def project_index(project: Project) -> hygiene.NearDupIndex | None:
    """A MinHash index of the project's prompts (None when the project checks no near duplicates)."""
    if not project.near_dup_threshold:
        return None
    index = hygiene.NearDupIndex(project.near_dup_threshold)
    rows = _original_prompts(project).values_list("id", "text").iterator(chunk_size=5000)
    index.add_many((f"prompt {pk} of the project", text) for pk, text in rows)
    return index


def eval_index(project: Project) -> hygiene.EvalIndex | None:
    sets = list(EvalSet.objects.filter(project=project).values_list("name", "prompts"))
    if not sets:
        return None
    index = hygiene.EvalIndex(project.near_dup_threshold)
    for name, prompts in sets:
        index.add_set(name, prompts)
    return index


def _writable(project: Project, author: AbstractUser, category: str) -> None:
    if project.writing_mode == "off":
        raise ValidationError(WRITING_OFF)
    if project.closed_at is not None:
        raise ValidationError(WRITING_CLOSED)
    if role_in_project(user=author, project=project) is None:
        raise ValidationError(WRITING_NOT_MEMBER)
    if category not in dict(WRITING_CATEGORIES):
        raise ValidationError({"category": WRITING_CATEGORY.format(choices=", ".join(dict(WRITING_CATEGORIES)))})


def prompt_write(*, project: Project, author: AbstractUser, text: str, category: str) -> Prompt:
    """A labeler's written prompt, after the hygiene checks: stored (redacted if the policy says so) with its author,
    category and purpose (red team in a red-team project), without responses until a policy generates them. A refusal
    stores a `PromptRefusal` (the reasons, not the text) and raises `PromptRefused`."""
    _writable(project, author, category)
    try:
        text = _text(text, "The prompt")
    except LineError as exc:
        raise ValidationError({"text": str(exc)}) from None
    count = Prompt.objects.filter(project=project, author=author).count()
    decision = hygiene.check_prompt(
        text, policy=project_policy(project), author=author.get_username(), author_count=count,
        existing=project_index(project), evals=eval_index(project),
    )  # fmt: skip
    record = PromptRecord(line=0, text=decision.text, messages=None, responses=[])  # the import's identity
    if decision.accepted and Prompt.all_objects.filter(project=project, content_hash=record.content_hash).exists():
        decision.reasons.append(hygiene.Reason("near_duplicate", "The same prompt is already in the project."))
        decision.accepted = False  # only reached with the near-duplicate check off
    if not decision.accepted:
        PromptRefusal.objects.create(
            project=project, author=author, source="written", category=category,
            reasons=[r.as_dict() for r in decision.reasons],
        )  # fmt: skip
        raise PromptRefused(decision.reasons)
    prompt = Prompt(
        project=project, text=decision.text, category=category, source="written", author=author,
        purpose="red_team" if project.writing_mode == "red_team" else "helpful", content_hash=record.content_hash,
        metadata={"redacted": decision.redacted} if decision.redacted else {},
    )  # fmt: skip
    prompt.full_clean()
    prompt.save()
    return prompt


def written_prompts_mine(*, project: Project, author: AbstractUser) -> dict:
    """The author's written prompts (newest first, with how many responses each has) and refusals."""
    prompts = Prompt.objects.filter(project=project, author=author).annotate(n_responses=Count("responses"))
    prompts = prompts.order_by("-id")
    refusals = PromptRefusal.objects.filter(project=project, author=author, source="written").order_by("-id")
    return {
        "count": prompts.count(),
        "cap": project.prompt_cap,
        "prompts": list(prompts[:200]),
        "refusals": list(refusals[:200]),
    }


def _eval_prompts(data: bytes, filename: str) -> list[str]:
    """Texts of an evaluation file: JSON lines ({"prompt": text or chat messages} or a string) or, for a .txt file,
    one prompt per line. Every bad line is reported."""
    prompts, errors = [], []
    as_json = not filename.lower().endswith(".txt")
    for number, raw in iter_lines(io.BytesIO(data)):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            if not line.strip():
                continue
            if as_json:
                row = json.loads(line)
                value = row.get("prompt") if isinstance(row, dict) else row
                if value is None:
                    raise LineError("missing field 'prompt'.")
                prompts.append(_prompt(value)[0])
            else:
                prompts.append(_text(line.strip(), "The prompt"))
        except (LineError, ValueError) as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise ValidationError([EVAL_BAD_LINES, *errors[:100]])
    if not prompts:
        raise ValidationError(EVAL_EMPTY)
    if len(prompts) > MAX_EVAL_PROMPTS:
        raise ValidationError(f"At most {MAX_EVAL_PROMPTS:,} evaluation prompts per set.")
    return prompts


@transaction.atomic
def eval_set_upload(
    *, project: Project, name: str, filename: str, data: bytes, created_by: AbstractUser | None = None
) -> EvalSet:
    """Store (or replace, by name) one of the project's evaluation sets; all or nothing."""
    if len(data) > settings.IMPORT_MAX_BYTES:
        raise ValidationError(EVAL_TOO_LARGE.format(size=len(data), limit=settings.IMPORT_MAX_BYTES))
    prompts = _eval_prompts(data, filename)
    eval_set, _ = EvalSet.objects.update_or_create(
        project=project, name=name,
        defaults={"filename": filename[:255], "prompts": prompts, "created_by": created_by,
                  "matches": eval_set_matches(project=project, name=name, prompts=prompts)},
    )  # fmt: skip
    eval_matched_sync(project)
    return eval_set


def eval_sets_recheck(project: Project) -> int:
    """Match every one of the project's sets again (after its near-duplicate threshold changed: matches are computed
    when a set is stored) and flag the prompts; returns how many prompts are flagged."""
    for eval_set in EvalSet.objects.filter(project=project):
        eval_set.matches = eval_set_matches(project=project, name=eval_set.name, prompts=eval_set.prompts)
        eval_set.save(update_fields=["matches"])
    return eval_matched_sync(project)


def eval_matched_sync(project: Project) -> int:
    """Set `Prompt.eval_matched` from the matches of all the project's sets (a replaced set may match fewer prompts):
    the labeling queue skips those prompts and later rounds' copies of them (`assignments._candidates`). Returns how
    many prompts are flagged."""
    sets = EvalSet.objects.filter(project=project).values_list("matches", flat=True)
    matched = sorted({match["prompt"] for matches in sets for match in matches or ()})
    prompts = Prompt.all_objects.filter(project=project)
    prompts.filter(eval_matched=True).update(eval_matched=False)  # in the caller's transaction: never half-done
    for start in range(0, len(matched), 500):  # chunks: a query binds a bounded number of parameters
        prompts.filter(pk__in=matched[start : start + 500]).update(eval_matched=True)
    return len(matched)


def eval_set_matches(*, project: Project, name: str, prompts: list[str]) -> list[dict]:
    """The project's prompts (gold and later rounds' copies included) that match one of `prompts`: the same normalised
    text, or MinHash similarity at the project's near-duplicate threshold, as new prompts are checked. Prompts that
    came before the set are not refused by anything, so they are found here, shown to the manager and left out of
    exports (`services/exports.py`)."""
    index = hygiene.EvalIndex(project.near_dup_threshold)
    index.add_set(name, prompts)
    rows = Prompt.objects.filter(project=project).order_by("id").values_list("id", "text").iterator(chunk_size=5000)
    return [
        {"prompt": pk, "item": item, "similarity": round(similarity, 3)}
        for pk, (_, item), similarity in index.matches(rows)
    ]


def eval_matched_prompt_ids(project: Project) -> set[int]:
    """Ids of the project's prompts that matched one of its evaluation sets (`Prompt.eval_matched`, kept by
    `eval_matched_sync`), and of every prompt with the same content as one of them: a later round copies a prompt's
    text into a new prompt (policy samples sent back to labelers) after the set was uploaded, and that copy is as
    contaminated as the original. The same rule as the labeling queue's (`assignments._candidates`)."""
    rows = Prompt.all_objects.filter(project=project)
    hashes = set(rows.filter(eval_matched=True).values_list("content_hash", flat=True))
    if not hashes:
        return set()
    # one pass over (id, hash) in Python: the hashes may be more than a query can bind
    return {pk for pk, content_hash in rows.values_list("id", "content_hash").iterator(chunk_size=5000)
            if content_hash in hashes}  # fmt: skip


def _author(metadata: dict) -> str:
    """The author an imported line names (its `author` field, which the import keeps in metadata): the cap counts
    per author. `source` is not used: in real files it names the dataset, not a person."""
    author = metadata.get("author")
    return str(author) if isinstance(author, str | int) and not isinstance(author, bool) and author != "" else ""


@dataclass
class ImportHygiene:
    """The hygiene pass of one import: the first (validating) pass calls `check` for every record, in file order;
    the writing pass then asks `decision_for(line)`. Keeps the refused lines' reasons and the redacted lines' texts,
    nothing for the other lines."""

    project: Project
    policy: hygiene.Policy
    existing: hygiene.NearDupIndex | None
    evals: hygiene.EvalIndex | None
    known_hashes: set[str]
    per_author: Counter  # imported lines that name an `author` (kept in metadata)
    refused: dict[int, list[hygiene.Reason]] = field(default_factory=dict)
    redacted: dict[int, tuple[str, list[dict] | None, list[str]]] = field(default_factory=dict)

    @classmethod
    def for_project(cls, project: Project) -> ImportHygiene:
        known = set(Prompt.all_objects.filter(project=project, round=1).values_list("content_hash", flat=True))
        authors = Counter(
            dict(
                _original_prompts(project).annotate(who=KT("metadata__author")).exclude(who=None).exclude(who="")
                .values_list("who").annotate(n=Count("id")).values_list("who", "n")
            )
        )  # fmt: skip
        return cls(project, project_policy(project), project_index(project), eval_index(project), known, authors)

    def check(self, record) -> None:
        if record.content_hash in self.known_hashes:
            return  # an exact duplicate of a prompt already in the project: skipped when written, as before
        author = _author(record.metadata)
        # A pairwise line is a judgment already made, not a prompt waiting for labels: preference datasets hold
        # several judgments of one prompt and conversations that continue each other (HH-RLHF's train file has 7
        # such lines in 3,843), so the near-duplicate check, which guards labeling effort, does not refuse them.
        # Personal information, the cap and evaluation-set contamination are checked as for every line.
        judged = record.chosen_index is not None
        decision = hygiene.check_prompt(
            record.text, messages=record.messages, policy=self.policy, author=author and f"Author '{author}'",
            author_count=self.per_author[author], existing=None if judged else self.existing, evals=self.evals,
        )  # fmt: skip
        if not decision.accepted and decision.redacted and self._known(record, decision):
            decision.accepted = True  # the redacted prompt is already in the project: an exact duplicate, skipped
        if not decision.accepted:
            self.refused[record.line] = decision.reasons
            return
        if decision.redacted:
            self.redacted[record.line] = (decision.text, decision.messages, decision.redacted)
        if author:
            self.per_author[author] += 1
        if self.existing is not None:
            self.existing.add(f"the prompt on line {record.line} of this file", decision.text, decision.signature)

    def _known(self, record, decision: hygiene.Decision) -> bool:
        redacted = dataclasses.replace(record, text=decision.text, messages=decision.messages)
        return redacted.content_hash in self.known_hashes

    def refusal_lines(self) -> list[str]:
        return [
            f"line {line}: refused ({', '.join(r.code for r in reasons)}): " + " ".join(r.message for r in reasons)
            for line, reasons in sorted(self.refused.items())
        ]

    def redaction_lines(self) -> list[str]:
        return [
            f"line {line}: personal information redacted ({', '.join(kinds)})."
            for line, (_, _, kinds) in sorted(self.redacted.items())
        ]

    def apply(self, record):
        """The record as it is written: None when refused, its redacted text when redacted."""
        if record.line in self.refused:
            return None
        if record.line in self.redacted:
            record.text, record.messages, _ = self.redacted[record.line]
        return record

    def record_refusals(self, created_by: AbstractUser | None) -> None:
        PromptRefusal.objects.bulk_create(
            PromptRefusal(project=self.project, author=created_by, source="import",
                          reasons=[{"line": line, **r.as_dict()} for r in reasons])
            for line, reasons in sorted(self.refused.items())
        )  # fmt: skip


def is_writer(*, project: Project, user: AbstractUser) -> bool:
    return project.writing_mode != "off" and role_in_project(user=user, project=project) is not None
