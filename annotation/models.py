"""Labeling data: projects, guidelines, prompts with candidate responses, assignments and rankings.

Behaviour lives in `annotation/services/`; models hold fields, constraints and simple properties only.
"""

import math
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from annotation import response_form

MAX_RESPONSES = 10
MIN_RESPONSES = 2

DEFAULT_FLAG_OPTIONS = [
    {"key": "unsafe", "label": "Unsafe / harmful"},
    {"key": "all_bad", "label": "All responses bad"},
    {"key": "cant_judge", "label": "Can't judge"},
]


MAX_LEASE_MINUTES = 30 * 24 * 60  # 30 days: a longer lease is a mistake (and 10**12 minutes overflows a date)
MAX_OVERLAP = 1000
MAX_FLAG_OPTIONS = 20
FLAG_KEY_RE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")
FLAG_OPTIONS_SHAPE = 'Flag options must be a list of {"key": "...", "label": "..."} objects.'


def default_flag_options() -> list[dict]:
    return [dict(option) for option in DEFAULT_FLAG_OPTIONS]


def flag_options_errors(value: object) -> list[str]:
    """Every reason `value` is not a list of {key, label} flag options; [] when it is."""
    if not isinstance(value, list):
        return [FLAG_OPTIONS_SHAPE]
    if len(value) > MAX_FLAG_OPTIONS:
        return [f"At most {MAX_FLAG_OPTIONS} flag options."]
    errors, keys = [], []
    for i, option in enumerate(value, start=1):
        if not isinstance(option, dict) or set(option) != {"key", "label"}:
            errors.append(f"Flag option {i}: {FLAG_OPTIONS_SHAPE}")
            continue
        key, label = option["key"], option["label"]
        if not isinstance(key, str) or not FLAG_KEY_RE.match(key):
            errors.append(f"Flag option {i}: the key must be 1-50 letters, digits, hyphens or underscores.")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            errors.append(f"Flag option {i}: the label must be a text of 1-200 characters.")
        if key in keys:
            errors.append(f"Flag key {key!r} appears more than once.")
        keys.append(key if isinstance(key, str) else None)
    return errors


def validate_flag_options(value: object) -> None:
    errors = flag_options_errors(value)
    if errors:
        raise ValidationError(errors)


MAX_REVISION_HOURS = 24 * 365


class RevisionPolicy(models.TextChoices):
    NEVER = "never", "Never"
    UNTIL_CLOSED = "until_closed", "Until the project closes"
    WITHIN_HOURS = "within_hours", "Within N hours of the first submission"


def validate_response_form(value: object) -> None:
    errors = response_form.form_errors(value)
    if errors:
        raise ValidationError(errors)


# Pairwise projects (Llama 2, Touvron et al. 2023, section 3.2.1): after choosing A or B, the labeler says how much
# better it is, on four levels. The margins are the "large" variant of Llama 2's margin table (section 3.2.2);
# docs/labeling-modes.md.
STRENGTH_LEVELS = 4
DEFAULT_STRENGTH_LABELS = ["Significantly better", "Better", "Slightly better", "Negligibly better / unsure"]
DEFAULT_STRENGTH_MARGINS = [3.0, 2.0, 1.0, 0.0]
MAX_STRENGTH_LABEL_CHARS = 100
MAX_MARGIN = 1000.0


def default_strength_labels() -> list[str]:
    return list(DEFAULT_STRENGTH_LABELS)


def default_strength_margins() -> list[float]:
    return list(DEFAULT_STRENGTH_MARGINS)


def strength_labels_errors(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) != STRENGTH_LEVELS:
        return [f"Strength labels must be a list of {STRENGTH_LEVELS} names, strongest first."]
    if not all(isinstance(v, str) and v.strip() and len(v) <= MAX_STRENGTH_LABEL_CHARS for v in value):
        return [f"Each strength label must be a text of 1-{MAX_STRENGTH_LABEL_CHARS} characters."]
    return []


def strength_margins_errors(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or len(value) != STRENGTH_LEVELS:
        return [f"Strength margins must be a list of {STRENGTH_LEVELS} numbers, one per strength level."]
    ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= MAX_MARGIN
        for v in value
    )
    return [] if ok else [f"Each strength margin must be a number from 0 to {MAX_MARGIN:g}."]


def validate_strength_labels(value: object) -> None:
    errors = strength_labels_errors(value)
    if errors:
        raise ValidationError(errors)


def validate_strength_margins(value: object) -> None:
    errors = strength_margins_errors(value)
    if errors:
        raise ValidationError(errors)


# Prompt writing (InstructGPT, Ouyang et al. 2022, Table 1): the use-case categories of its prompt dataset.
WRITING_CATEGORIES = [
    ("generation", "Generation"),
    ("open_qa", "Open QA"),
    ("brainstorming", "Brainstorming"),
    ("chat", "Chat"),
    ("rewrite", "Rewrite"),
    ("summarization", "Summarization"),
    ("classification", "Classification"),
    ("closed_qa", "Closed QA"),
    ("extraction", "Extraction"),
    ("other", "Other"),
]


PAIRWISE_RESPONSES = "A pairwise project shows two responses: leave responses per task empty or set it to 2."


class Project(models.Model):
    class Kind(models.TextChoices):
        RANKING = "ranking", "Ranking (order K responses)"
        PAIRWISE = "pairwise", "Pairwise (A / B / tie with a strength)"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(
        max_length=20, choices=Kind.choices, default=Kind.RANKING,
        help_text="ranking: order every shown response; pairwise: two responses, A / B / tie and a strength. "
        "Cannot change once the project has rankings or tasks.",
    )  # fmt: skip
    # Ranking settings.
    responses_per_task = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Show at most this many responses per prompt (empty: all of them)."
    )
    allow_ties = models.BooleanField(default=True)
    rationale_required = models.BooleanField(default=False)
    flag_options = models.JSONField(default=default_flag_options, blank=True, validators=[validate_flag_options])
    render_markdown = models.BooleanField(
        default=True,
        help_text="Show prompts, responses and rationales as rendered markdown (sanitised); "
        "off: as plain text, for projects that judge the raw formatting.",
    )
    overlap = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_OVERLAP)],
        help_text="Distinct labelers wanted per prompt.",
    )
    overlap_mode = models.CharField(
        max_length=10,
        choices=[("fixed", "Fixed: every prompt to `overlap` labelers"),
                 ("adaptive", "Adaptive: `overlap_min` first, more (up to `overlap`) while they disagree")],
        default="fixed",
    )  # fmt: skip
    overlap_min = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_OVERLAP)],
        help_text="Adaptive overlap: labelers asked first for every prompt.",
    )
    adaptive_agreement = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Adaptive overlap: a prompt is settled when its labelers' mean pairwise agreement reaches this and a "
        "response leads the others by two first places; otherwise it goes to one more labeler.",
    )
    qualification_required = models.BooleanField(
        default=False,
        help_text="New labelers first rank the qualification prompts (gold prompts marked for it) and start on the "
        "project once their agreement with the reference reaches the threshold, or a manager admits them.",
    )
    qualification_threshold = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Pairwise agreement with the reference rankings needed to pass the qualification.",
    )
    lease_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LEASE_MINUTES)],
        help_text=f"Minutes a labeler holds a prompt (at most {MAX_LEASE_MINUTES:,}, 30 days).",
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of a labeler's queue drawn from gold prompts (0-1).")
    revision_policy = models.CharField(
        max_length=20,
        choices=RevisionPolicy.choices,
        default=RevisionPolicy.UNTIL_CLOSED,
        help_text="When labelers may revise their own rankings (every revision is kept as a version).",
    )
    revision_hours = models.PositiveIntegerField(
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REVISION_HOURS)],
        help_text="With 'within N hours': hours after the first submission during which a ranking may be revised.",
    )
    feedback_every = models.PositiveSmallIntegerField(
        default=10,
        validators=[MaxValueValidator(1000)],
        help_text="After every N rankings a labeler can see how they agree with the others on settled prompts and "
        "with gold prompts, with the guideline passages that decide (0: no feedback).",
    )
    closed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the project is closed: no prompts are handed out and no rankings or revisions are taken.",
    )
    response_form = models.JSONField(
        default=dict, blank=True, validators=[validate_response_form],
        help_text='Per-response form beside the ranking: {"fields": [...]} (likert score, yes/no labels, free '
        'text), "instructgpt" for InstructGPT\'s defaults, {} for none. docs/labeling-modes.md.',
    )  # fmt: skip
    strength_labels = models.JSONField(
        default=default_strength_labels, blank=True, validators=[validate_strength_labels],
        help_text="Pairwise projects: the names of the four strength levels, strongest first.",
    )  # fmt: skip
    strength_margins = models.JSONField(
        default=default_strength_margins, blank=True, validators=[validate_strength_margins],
        help_text="Pairwise projects: the export's margin for each strength level (default 3, 2, 1, 0).",
    )  # fmt: skip
    writing_mode = models.CharField(
        max_length=10,
        choices=[("off", "Off"), ("prompts", "Labelers write prompts"),
                 ("red_team", "Labelers write red-team prompts (ranked for harmlessness)")],
        default="off",
        help_text="Prompt writing: labelers write prompts with a use-case category on the project's writing page; "
        "red-team prompts try to make a model misbehave and their rankings export as harmlessness pairs.",
    )  # fmt: skip
    prompt_cap = models.PositiveIntegerField(
        default=200,
        validators=[MaxValueValidator(1_000_000)],
        help_text="Hygiene: prompts one author (written) or one source (imported lines naming a source) may have in "
        "the project; InstructGPT's 200 per user (0: no cap).",
    )
    pii_policy = models.CharField(
        max_length=10,
        choices=[("redact", "Redact personal information"), ("refuse", "Refuse prompts with personal information"),
                 ("off", "No check")],
        default="redact",
        help_text="Hygiene: e-mail addresses, phone numbers, card numbers, IBANs, national IDs and addresses in a "
        "prompt are replaced by [EMAIL], [PHONE], ... (redact) or the prompt is refused (refuse).",
    )  # fmt: skip
    near_dup_threshold = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Hygiene: refuse a new prompt whose MinHash similarity (Jaccard, word 5-shingles) to a prompt of the "
        "project or of an evaluation set reaches this (0: no near-duplicate check; exact duplicates of an evaluation "
        "prompt are always refused).",
    )
    import_refusals = models.CharField(
        max_length=20,
        choices=[("all_or_nothing", "Refuse the whole file (every refused line listed)"),
                 ("per_line", "Import the accepted lines and report each refused one")],
        default="all_or_nothing",
        help_text="Imports: what a line that fails the hygiene checks does to the rest of the file.",
    )  # fmt: skip
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="project_lease_positive"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"),
            models.CheckConstraint(condition=Q(revision_hours__gte=1), name="project_revision_hours_positive"),
            models.CheckConstraint(
                condition=Q(responses_per_task__isnull=True)
                | (Q(responses_per_task__gte=MIN_RESPONSES) & Q(responses_per_task__lte=MAX_RESPONSES)),
                name="project_responses_per_task_2_10",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """A preset name or a partial schema is stored in full (defaults filled in); an emptied strength setting
        (the admin's blank field) is the default again; a pairwise project shows 2 responses."""
        super().clean()
        if self.strength_labels in (None, "", []):
            self.strength_labels = default_strength_labels()
        if self.strength_margins in (None, "", []):
            self.strength_margins = default_strength_margins()
        if not response_form.form_errors(self.response_form):
            self.response_form = response_form.normalized_form(self.response_form or {})
            if not self.response_form["fields"]:
                self.response_form = {}
        if self.kind == self.Kind.PAIRWISE and self.responses_per_task not in (None, 2):
            raise ValidationError({"responses_per_task": PAIRWISE_RESPONSES})
        if self.overlap_mode == "adaptive" and self.overlap_min and self.overlap and self.overlap_min > self.overlap:
            raise ValidationError(
                {"overlap_min": f"Adaptive overlap starts with at most `overlap` ({self.overlap}) labelers."}
            )

    @property
    def is_pairwise(self) -> bool:
        return self.kind == self.Kind.PAIRWISE

    @property
    def response_fields(self) -> list[dict]:
        """The per-response form's fields with defaults filled in; [] without a form or when the stored schema is
        invalid (it never breaks the labeling page or a submit)."""
        return response_form.valid_fields(self.response_form)

    @property
    def likert_field(self) -> dict | None:
        return response_form.likert_field(self.response_fields)

    @property
    def strength_choices(self) -> list[dict]:
        """[{value: 1..4, label}] strongest first; the defaults when the stored names are invalid."""
        labels = self.strength_labels if not strength_labels_errors(self.strength_labels) else DEFAULT_STRENGTH_LABELS
        return [{"value": i, "label": label} for i, label in enumerate(labels, start=1)]

    @property
    def strength_margin_values(self) -> tuple[float, ...]:
        margins = self.strength_margins if not strength_margins_errors(self.strength_margins) else None
        return tuple(float(m) for m in (margins or DEFAULT_STRENGTH_MARGINS))

    def target_for(self, prompt: "Prompt") -> int:
        """Labelers the prompt needs now: `overlap`, or with adaptive overlap its own raised target (starting at
        `overlap_min`, never above `overlap`)."""
        if self.overlap_mode != "adaptive":
            return self.overlap
        return min(prompt.wanted or self.overlap_min, self.overlap)

    @property
    def base_target(self) -> int:
        """What a prompt nobody has raised needs: `overlap`, or `overlap_min` with adaptive overlap."""
        return min(self.overlap_min, self.overlap) if self.overlap_mode == "adaptive" else self.overlap

    @property
    def flag_choices(self) -> list[dict]:
        """The well-formed flag options only: settings stored before validation (or written around it) never break
        the labeling page or a submit."""
        options = self.flag_options if isinstance(self.flag_options, list) else []
        return [o for o in options if not flag_options_errors([o])]

    @property
    def flag_keys(self) -> list[str]:
        return [option["key"] for option in self.flag_choices]


class Membership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Project manager"
        LABELER = "labeler", "Labeler"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.LABELER)
    excluded = models.BooleanField(
        default=False, help_text="Keep this labeler's rankings but leave them out of agreement and exports."
    )
    qualification = models.CharField(
        max_length=10,
        blank=True,
        choices=[("", "Not started"), ("passed", "Passed"), ("failed", "Failed (a manager may admit)"),
                 ("admitted", "Admitted by a manager"), ("refused", "Refused by a manager")],
        default="",
    )  # fmt: skip
    qualification_score = models.FloatField(null=True, blank=True)
    qualification_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} of {self.project}"


class Guideline(models.Model):
    """One version of a project's labeling guidelines (markdown). Rankings record the version they were made under."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guidelines")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="guideline_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project} guidelines v{self.version}"


class ImportBatch(models.Model):
    """One file being imported. Its prompts (and a pairwise file's rankings) are written in short transactions while
    it is `staging`, invisible to labelers, progress, agreement and exports (`Prompt.staged`), and become visible
    together when it commits; a failed import deletes them and keeps this row with the reason."""

    class Status(models.TextChoices):
        STAGING = "staging", "Staging"
        COMMITTED = "committed", "Committed"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    filename = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STAGING)
    error = models.TextField(blank=True)
    prompts_written = models.PositiveIntegerField(default=0, help_text="Staged so far (progress of the import).")
    prompts_created = models.PositiveIntegerField(default=0)
    responses_created = models.PositiveIntegerField(default=0)
    rankings_created = models.PositiveIntegerField(default=0)
    duplicates_skipped = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Written after every batch: the import's heartbeat.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.filename or 'a file'} into {self.project} ({self.status})"


class VisibleManager(models.Manager):
    """The default manager of Prompt and Ranking: rows of an import still being written (staged) are left out, so
    no query that goes through it (queue, progress, agreement, exports, admin, API) can see half an import.
    Queries that reach these tables through a join (responses by prompt, entries by ranking) and raw SQL filter
    `staged` themselves; `all_objects` sees everything (the import service only)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(staged=False)


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField(help_text="The prompt as plain text (for chat prompts: the turns rendered as text).")
    messages = models.JSONField(null=True, blank=True, help_text="Chat prompts: a list of {role, content}.")
    category = models.CharField(max_length=100, blank=True, db_index=True)
    source = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=20, blank=True)
    round = models.PositiveIntegerField(default=1, help_text="Labeling round (new policies add rounds).")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the prompt's content, for duplicates.")
    is_gold = models.BooleanField(default=False)
    is_qualification = models.BooleanField(
        default=False, help_text="A gold prompt of the project's qualification set (new labelers rank these first)."
    )
    gold_ranks = models.JSONField(
        null=True, blank=True, help_text="Gold prompts: reference rank per response id ({id: rank})."
    )
    wanted = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Adaptive overlap: labelers this prompt needs now (empty: the project's first).",
    )
    # Denormalised so the queue can skip finished prompts through an index instead of counting every time.
    ranking_count = models.PositiveIntegerField(default=0)
    is_complete = models.BooleanField(default=False)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts", editable=False
    )
    staged = models.BooleanField(default=False, editable=False, help_text="Written by an import not yet committed.")
    eval_matched = models.BooleanField(
        default=False, editable=False,
        help_text="Matched one of the project's evaluation sets when it was uploaded: held back from the labeling "
        "queue (with later rounds' copies of it) and left out of exports.",
    )  # fmt: skip
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="written_prompts",
        help_text="Written prompts: the labeler who wrote it.",
    )  # fmt: skip
    purpose = models.CharField(
        max_length=10, choices=[("helpful", "Helpfulness"), ("red_team", "Red team (ranked for harmlessness)")],
        default="helpful", help_text="Red-team prompts' rankings export as harmlessness pairs, apart from the rest.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    all_objects = models.Manager()  # staged rows included: the import service only
    objects = VisibleManager()  # the default (Meta.default_manager_name)

    class Meta:
        ordering = ["id"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash", "round"], name="prompt_unique_content"),
        ]
        indexes = [models.Index(fields=["project", "is_complete", "is_gold", "id"], name="prompt_queue_idx")]

    def __str__(self) -> str:
        return self.text[:80]


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True, help_text="Hidden from labelers.")
    index = models.PositiveSmallIntegerField(help_text="Order within the imported line (0-based).")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "index"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "index"], name="response_index_unique"),
            models.CheckConstraint(condition=Q(index__lt=MAX_RESPONSES), name="response_index_lt_max"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Assignment(models.Model):
    """A prompt handed to a labeler with a lease. Expired leases stop counting towards the prompt's overlap."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="assignments")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    shown_order = models.JSONField(help_text="Response ids in the order this labeler sees them.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One assignment per labeler and prompt: nobody ranks a prompt twice.
            models.UniqueConstraint(fields=["prompt", "labeler"], name="assignment_once_per_labeler"),
        ]
        indexes = [
            models.Index(fields=["prompt", "status", "expires_at"], name="assignment_lease_idx"),
            models.Index(fields=["labeler", "project", "status"], name="assignment_labeler_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.labeler} → prompt {self.prompt_id} ({self.status})"


class Ranking(models.Model):
    """One labeler's judgment of one prompt. Immutable: a correction is a new version and the old one is kept."""

    class Source(models.TextChoices):
        PLATFORM = "platform", "Labeled here"
        IMPORTED = "imported", "Imported"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rankings")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rankings")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rankings")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL)
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    num_responses = models.PositiveSmallIntegerField()
    shown_order = models.JSONField(help_text="Response ids in the order they were shown.")
    flags = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_s = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PLATFORM)
    metadata = models.JSONField(default=dict, blank=True, help_text="Imported rankings: the file's other fields.")
    staged = models.BooleanField(default=False, editable=False, help_text="Written by an import not yet committed.")
    strength = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="Pairwise projects: how much better the chosen response is, 1 (strongest) to 4; empty for a tie.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    all_objects = models.Manager()  # staged rows included: the import service only
    objects = VisibleManager()  # the default (Meta.default_manager_name)

    class Meta:
        ordering = ["-created_at"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "labeler"], condition=Q(is_current=True), name="ranking_one_current_per_labeler"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | (Q(strength__gte=1) & Q(strength__lte=STRENGTH_LEVELS)),
                name="ranking_strength_1_4",
            ),
            models.UniqueConstraint(fields=["prompt", "labeler", "version"], name="ranking_version_unique"),
            models.CheckConstraint(
                condition=Q(num_responses__gte=MIN_RESPONSES) & Q(num_responses__lte=MAX_RESPONSES),
                name="ranking_num_responses_2_10",
            ),
            models.CheckConstraint(
                condition=Q(time_spent_s__isnull=True) | Q(time_spent_s__gte=0), name="ranking_time"
            ),
        ]
        indexes = [models.Index(fields=["project", "is_current"], name="ranking_project_idx")]

    def __str__(self) -> str:
        return f"Ranking {self.pk} of prompt {self.prompt_id} by {self.labeler}"


class RankingEntry(models.Model):
    """The rank one response got in one ranking (1 = best; equal ranks are a tie)."""

    ranking = models.ForeignKey(Ranking, on_delete=models.CASCADE, related_name="entries")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="ranking_entries")
    rank = models.PositiveSmallIntegerField()
    shown_position = models.PositiveSmallIntegerField(help_text="0-based position the response was shown at.")
    # Copied from the ranking so the database itself can check rank <= K.
    num_responses = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["ranking", "rank", "shown_position"]
        constraints = [
            models.UniqueConstraint(fields=["ranking", "response"], name="entry_response_once"),
            models.UniqueConstraint(fields=["ranking", "shown_position"], name="entry_position_once"),
            models.CheckConstraint(
                condition=Q(rank__gte=1) & Q(rank__lte=F("num_responses")), name="entry_rank_within_1_k"
            ),
            models.CheckConstraint(condition=Q(shown_position__lt=F("num_responses")), name="entry_position_lt_k"),
        ]

    def __str__(self) -> str:
        return f"{self.response_id}: {self.rank}"


class ResponseRating(models.Model):
    """One labeler's per-response form for one response in one ranking: the score, yes/no labels and free text
    (`values`, by field key, as the project's form defined them when submitted). Immutable like its ranking."""

    ranking = models.ForeignKey(Ranking, on_delete=models.CASCADE, related_name="ratings")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="ratings")
    score = models.SmallIntegerField(null=True, blank=True, help_text="The likert field's value (copied from values).")
    values = models.JSONField(default=dict, blank=True, help_text="{field key: value}.")

    class Meta:
        ordering = ["ranking", "response"]
        constraints = [models.UniqueConstraint(fields=["ranking", "response"], name="rating_response_once")]

    def __str__(self) -> str:
        return f"Rating of response {self.response_id} in ranking {self.ranking_id}"


class ApiTokenUse(models.Model):
    """When a user's API token was last used (DRF's Token has no such field); reset when the token is rotated."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_use")
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} token last used {self.last_used_at}"


class EvalSet(models.Model):
    """A named evaluation set a manager uploaded: prompts that must never be trained on. A new prompt matching one
    (the same normalised text, or MinHash similarity at the project's near-duplicate threshold) is refused; the
    project's prompts that already matched one when the set was uploaded are kept in `matches` and left out of
    exports."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="eval_sets")
    name = models.CharField(max_length=200)
    filename = models.CharField(max_length=255, blank=True)
    prompts = models.JSONField(default=list, help_text="The evaluation prompts' texts.")
    matches = models.JSONField(
        default=list, blank=True,
        help_text="The project's prompts that matched one of this set's when it was uploaded: "
        '[{"prompt": id, "item": 1-based number in the set, "similarity": 0..1}]. Exports leave them out.',
    )  # fmt: skip
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="evalset_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({len(self.prompts)} prompts) of {self.project}"


class PromptRefusal(models.Model):
    """A prompt the hygiene checks refused, with why; its text is not kept (it may hold personal information or an
    evaluation prompt). Written prompts' refusals are listed to their author."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompt_refusals")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompt_refusals"
    )
    source = models.CharField(
        max_length=20, choices=[("written", "Written"), ("import", "Imported")], default="written"
    )
    category = models.CharField(max_length=100, blank=True)
    reasons = models.JSONField(default=list, help_text="[{code, message}]: cap, pii, near_duplicate, contaminated.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Prompt refused in {self.project}: {', '.join(r.get('code', '') for r in self.reasons)}"
