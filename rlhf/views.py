"""Training-run pages: a project's runs, the new-run form, the run page (live progress through a JSON endpoint),
two runs side by side, and where a scored model disagrees with the labelers. Managers of the run's project and
admins only: everyone else, labelers included, gets 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.selectors import project_get_for_user
from annotation.selectors_comparisons import policy_comparisons_get
from rlhf.forms import ComparisonForm, GenerateForm, PolicyRunForm, RewardRunForm
from rlhf.models import TrainingRun
from rlhf.selectors import (
    disagreements_get,
    managed_projects,
    metric_points,
    metric_series,
    run_boundary_get,
    run_get_for_user,
    run_length_evaluation_get,
    run_no_heldout_reason_get,
    runs_for_user,
)
from rlhf.services import (
    comparison_enqueue,
    generation_enqueue,
    scoring_enqueue,
    training_run_cancel,
    training_run_create,
    training_run_sweep_if_running,
)
from rlhf.services.boundary import boundary_warnings
from rlhf.services.heartbeat import JSON_JOBS
from rlhf.services.policies import POLICY_KINDS, REWARD_KINDS
from rlhf.services.ppo import finished_runs_get, policy_run_create, ppo_page_get
from rlhf.training.eta import CHAIN_STAGE_NAMES

RUN_QUEUED = "Run {id} queued: a background worker picks it up (`manage.py rlhf_worker`, started by `make demo`)."
RUN_CANCELLING = "Cancel requested: the run stops at its next progress report."
RUN_CANCELLED = "Run cancelled."
SCORING_QUEUED = "Scoring queued: the worker scores every response of the project with this model."
GENERATION_QUEUED = (
    "Generation queued: the worker samples {k} responses per prompt from this policy into a new labeling round of "
    "'{slug}'."
)
COMPARISON_QUEUED = (
    "Comparison queued: the worker samples {k} responses per prompt from this policy and {k} from its reference into "
    "a new blind labeling round of '{slug}'."
)
# The policy runs' curves: (canvas id, title, metric names), drawn by run.js as they arrive.
PPO_CHARTS = [
    ("chart-reward", "Mean reward", ["ppo/mean_reward", "ppo/rlhf_reward", "grpo/mean_reward", "rloo/mean_reward"]),
    ("chart-kl", "KL to the reference (nats)", ["ppo/kl", "grpo/kl", "rloo/kl"]),
    ("chart-kl-coef", "KL coefficient (adaptive with kl_target)", ["ppo/kl_coef"]),
    ("chart-entropy", "Entropy", ["ppo/entropy", "ppo/token_entropy", "grpo/entropy", "rloo/entropy"]),
    ("chart-ppo-loss", "Policy and value loss", ["ppo/policy_loss", "ppo/value_loss"]),
    ("chart-clip", "Clip fraction", ["ppo/clipfrac", "ppo/value_clipfrac", "grpo/clipfrac", "rloo/clipfrac"]),
    ("chart-hacking", "Held-out gain: reward model vs second opinion (SDs)",
     ["ppo/monitor_reward_gain_std", "ppo/monitor_second_gain_std", "ppo/monitor_gap"]),
    ("chart-length", "Held-out response length (tokens)", ["ppo/monitor_length"]),
]  # fmt: skip


def run_progress_data(run: TrainingRun, after: int = 0) -> dict:
    """What the run page polls: status, progress, the log tail and the metric points it does not have yet."""
    points = metric_points(run=run, after=after)
    return {
        "id": run.pk,
        "status": run.status,
        "status_display": run.get_status_display(),
        "active": run.is_active,
        "cancel_requested": run.cancel_requested,
        "stage": run.stage,
        "step": run.step,
        "total_steps": run.total_steps,
        "percent": run.percent,
        "eta_s": run.eta_s,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
        "log_tail": run.log_tail,
        "error": run.error,
        "points": points,
        "last_id": points[-1]["id"] if points else after,
        **_jobs(run),
    }


JOBS_ACTIVE = ("queued", "running")


def _jobs(run: TrainingRun) -> dict:
    """The scoring, generation and comparison jobs the run has had (status, done, total, error), and whether one is
    queued or running: the page keeps polling until they finish, then reloads to show their results."""
    jobs = {
        field: {key: state.get(key) for key in ("status", "done", "total", "error")}
        for field in JSON_JOBS
        if isinstance(state := getattr(run, field), dict) and state
    }
    return {"jobs": jobs, "jobs_active": any(job["status"] in JOBS_ACTIVE for job in jobs.values())}


@login_required
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    """Every run the user may see, newest first, with links to each managed project's runs."""
    runs = runs_for_user(user=request.user)[:200]
    return render(request, "rlhf/run_list.html", {"runs": runs, "projects": managed_projects(user=request.user)})


@login_required
@require_GET
def project_runs(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    runs = runs_for_user(user=request.user, project=project)
    return render(request, "rlhf/project_runs.html", {"project": project, "runs": runs})


@login_required
@require_http_methods(["GET", "POST"])
def run_create(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    form = RewardRunForm(request.POST or None)
    return _run_form_submit(request, project, form, training_run_create, "rlhf/run_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def policy_run_create_view(request: HttpRequest, slug: str) -> HttpResponse:
    """A new PPO run (or GRPO/RLOO, DPO, SFT, or the default chain); a service refusal becomes a form error."""
    project = project_get_for_user(user=request.user, slug=slug, manage=True)
    choices = {
        "policy_runs": finished_runs_get(project=project, kinds=POLICY_KINDS),
        "reward_runs": finished_runs_get(project=project, kinds=REWARD_KINDS),
    }
    form = PolicyRunForm(request.POST or None, **choices)
    return _run_form_submit(request, project, form, policy_run_create, "rlhf/policy_run_form.html")


def _run_form_submit(request: HttpRequest, project, form, create, template: str) -> HttpResponse:
    """A valid POST queues the run through `create` (a service refusal becomes a form error) and redirects to its
    page; otherwise the form is shown (again)."""
    if request.method == "POST" and form.is_valid():
        try:
            run = create(project=project, user=request.user, **form.run_arguments())
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, RUN_QUEUED.format(id=run.pk))
            for warning in boundary_warnings((run.export or {}).get("boundary")):
                messages.warning(request, warning)
            return redirect("rlhf:run-detail", run_id=run.pk)
    return render(request, template, {"project": project, "form": form})


def _queue_from_form(request: HttpRequest, run_id: int, form_class: type, enqueue, queued: str) -> HttpResponse:
    """The run page's queue-a-job forms (generation, comparison): validate, enqueue for the run's project, say what
    happened, back to the run page."""
    run = run_get_for_user(user=request.user, run_id=run_id)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
        return redirect("rlhf:run-detail", run_id=run.pk)
    try:
        enqueue(run=run, project=run.project, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, queued.format(k=form.cleaned_data["k"], slug=run.project.slug))
    return redirect("rlhf:run-detail", run_id=run.pk)


@login_required
@require_POST
def run_generate(request: HttpRequest, run_id: int) -> HttpResponse:
    """Queue sampling this policy's responses into a new labeling round of the run's project."""
    return _queue_from_form(request, run_id, GenerateForm, generation_enqueue, GENERATION_QUEUED)


@login_required
@require_POST
def run_comparison_create(request: HttpRequest, run_id: int) -> HttpResponse:
    """Queue a blind comparison batch of this policy against its reference in the run's project."""
    return _queue_from_form(request, run_id, ComparisonForm, comparison_enqueue, COMPARISON_QUEUED)


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = training_run_sweep_if_running(run=run_get_for_user(user=request.user, run_id=run_id))
    final = _final_metrics(run)
    last = run.metric_points.order_by("-id").values_list("id", flat=True).first() or 0
    chart_data = {
        "progress_url": reverse("rlhf:run-progress", args=[run.pk]),
        "active": run.is_active,
        "stage": run.stage,
        "status": run.status,
        "last_id": last,
        "series": metric_series(run=run),
        "margin_histogram": _margin_histogram(final["metrics"]),
        "jobs_active": _jobs(run)["jobs_active"],
    }
    policy = ppo_page_get(run)
    if policy:
        chart_data["extra_charts"] = [{"id": i, "title": t, "names": n} for i, t, n in PPO_CHARTS]
    context = {"run": run, "final": final, "chart_data": chart_data, "config_rows": sorted(run.config.items()),
               "policy": policy, "ppo_charts": PPO_CHARTS if policy else [],
               "generate_form": GenerateForm(), "comparison_form": ComparisonForm(),
               "comparisons": policy_comparisons_get(project=run.project, run_id=run.pk) if policy and run.project
               else [],
               "boundary": run_boundary_get(run=run),
               "chain_stages": CHAIN_STAGE_NAMES if run.kind == TrainingRun.Kind.CHAIN else ()}  # fmt: skip
    return render(request, "rlhf/run_detail.html", context)


@login_required
@require_GET
def run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    run = training_run_sweep_if_running(run=run_get_for_user(user=request.user, run_id=run_id))
    try:
        after = max(int(request.GET.get("after", 0)), 0)
    except ValueError:
        after = 0
    return JsonResponse(run_progress_data(run, after=after))


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    try:
        run = training_run_cancel(run=run)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, RUN_CANCELLED if run.status == TrainingRun.Status.CANCELLED else RUN_CANCELLING)
    return redirect("rlhf:run-detail", run_id=run.pk)


@login_required
@require_GET
def run_compare(request: HttpRequest) -> HttpResponse:
    """Two runs' final metrics and configs side by side (?a=ID&b=ID)."""
    try:
        ids = [int(request.GET[key]) for key in ("a", "b")]
    except (KeyError, ValueError):
        return render(request, "rlhf/run_compare.html", {"runs": runs_for_user(user=request.user)[:100]}, status=200)
    runs = [run_get_for_user(user=request.user, run_id=i) for i in ids]
    finals = [_final_metrics(run) for run in runs]
    names = sorted(set(finals[0]["flat"]) | set(finals[1]["flat"]))
    metric_rows = [(name, finals[0]["flat"].get(name), finals[1]["flat"].get(name)) for name in names]
    config_names = sorted(set(runs[0].config) | set(runs[1].config))
    config_rows = [(n, runs[0].config.get(n), runs[1].config.get(n)) for n in config_names]
    context = {"a": runs[0], "b": runs[1], "metric_rows": metric_rows, "config_rows": config_rows, "finals": finals}
    context["series"] = {"a": metric_series(run=runs[0]), "b": metric_series(run=runs[1])}
    return render(request, "rlhf/run_compare.html", context)


@login_required
@require_POST
def run_score(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    try:
        run = scoring_enqueue(run=run, project=run.project)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, SCORING_QUEUED)
        for warning in boundary_warnings(run.scoring.get("boundary")):
            messages.warning(request, warning)
    return redirect("rlhf:run-disagreements", run_id=run.pk)


@login_required
@require_GET
def run_disagreements(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    report = disagreements_get(run=run, project=run.project) if run.project else None
    return render(request, "rlhf/run_disagreements.html", {"run": run, "report": report})


def _flatten(data, prefix: str = "") -> dict:
    flat = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}/")
        elif isinstance(value, int | float | str | bool) or value is None:
            flat[name] = value
    return flat


def _final_metrics(run: TrainingRun) -> dict:
    """The final metrics arranged for the page: headline figures, accuracy by group next to the human ceiling, the
    figures split by response length (with the length-bias warning), or why there is no held-out figure."""
    metrics, ceiling = run.metrics or {}, (run.export or {}).get("human_agreement") or {}
    groups = []
    for key, title, human_key in (
        ("eval/accuracy_by_category", "Category", "by_category"),
        ("eval/accuracy_by_guideline_version", "Guideline version", "by_guideline"),
    ):
        model = {str(g): v for g, v in (metrics.get(key) or {}).items()}
        human = ceiling.get(human_key) or {}
        rows = [
            {"group": g, "model": model.get(g, {}), "human": human.get(g, {})} for g in sorted(set(model) | set(human))
        ]
        groups.append({"title": title, "rows": rows})
    flat = {k: v for k, v in _flatten(metrics).items() if "histogram" not in k}
    headline = {
        "accuracy": metrics.get("eval/accuracy"),
        "pairs": metrics.get("eval/pairs"),
        "margin_mean": metrics.get("eval/margin_mean"),
        "length_baseline": metrics.get("eval/length_baseline_accuracy"),
        "truncated": metrics.get("train/truncated_pairs"),
    }
    return {"metrics": metrics, "ceiling": ceiling, "groups": groups, "flat": flat, "headline": headline,
            "length": run_length_evaluation_get(run=run), "no_heldout": run_no_heldout_reason_get(run=run)}  # fmt: skip


def _margin_histogram(metrics: dict) -> dict | None:
    """{edges, counts} of the held-out reward margins r(chosen) - r(rejected)."""
    hist = metrics.get("eval/margin_histogram")
    return hist if isinstance(hist, dict) and "counts" in hist and "edges" in hist else None
