"""A run's inputs are written by the worker, when it takes the run, not in the web request that created it.

Creating a run (`training_run_create` / `policy_run_create`) checks the settings, saves the run queued with its export
options and enqueues it: a request stays short however large the project. The worker then calls
`run_inputs_prepare`: the files of the kind's registry `inputs` go into runs/<id>/data/ (rlhf/services/inputs.py),
their paths into the run's config (the registry's `input_fields`) and their counts into `run.export`; a reward
model also gets the human-agreement ceiling of its held-out prompts. A project with nothing to train on fails the run
with the reason. `run_inputs_check` is the request's cheap guard against the obvious case (nothing ranked yet).
"""

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation.exports.options import ExportOptions
from annotation.models import Project, Prompt, Ranking
from rlhf.models import TrainingRun
from rlhf.selectors import human_agreement_get
from rlhf.services.common import RUN_NO_PAIRS
from rlhf.services.inputs import NO_PROMPTS, export_snapshot_write, run_inputs_write
from rlhf.training.registry import DEMONSTRATIONS, PREFERENCES, PROMPTS, Stage, stage_get


class RunInputsError(Exception):
    """The project has nothing this run can train on (the message says why)."""


def run_inputs_check(*, stage: Stage, project: Project) -> None:
    """In the request: refuse a run whose project obviously has nothing to train on (no prompts, nothing ranked)."""
    prompts = Prompt.objects.filter(project=project, is_gold=False)
    if PROMPTS in stage.inputs and not prompts.exists():
        raise ValidationError(NO_PROMPTS.format(slug=project.slug))
    ranked = Ranking.objects.filter(project=project, is_current=True, prompt__is_gold=False)
    if stage.inputs & {PREFERENCES, DEMONSTRATIONS} and not ranked.exists():
        raise ValidationError(RUN_NO_PAIRS.format(slug=project.slug))


def export_pending(options: dict[str, Any]) -> dict[str, Any]:
    """What `run.export` holds until the worker writes the inputs."""
    return {"options": options, "pending": True}


def run_inputs_prepare(run: TrainingRun) -> str:
    """Write the run's inputs (once: a run whose inputs are written is left alone), set their paths in its config and
    their counts in its export; returns a line for the run's log. RunInputsError when there is nothing to train on."""
    if not run.export.get("pending"):
        return "Inputs already written."
    stage, project, data_dir = stage_get(run.kind), run.project, Path(run.data_dir)
    options = dict(run.export.get("options") or {})
    try:
        if run.kind == TrainingRun.Kind.REWARD_MODEL:
            config, export, line = _reward_model(project, data_dir, options)
        else:
            config, export, line = _policy(stage, project, data_dir, options)
    except ValidationError as exc:
        raise RunInputsError(" ".join(exc.messages)) from None
    run.config = {**run.config, **config}
    run.export = {k: v for k, v in run.export.items() if k != "pending"} | export
    run.export["written_at"] = timezone.now().isoformat()
    TrainingRun.objects.filter(pk=run.pk).update(config=run.config, export=run.export)
    return line


def _reward_model(project: Project, data_dir: Path, options: dict) -> tuple[dict, dict, str]:
    snapshot = export_snapshot_write(project=project, data_dir=data_dir, options=options)
    ceiling = human_agreement_get(project=project, prompt_ids=snapshot.pop("test_prompt_ids"))
    config = {"train_file": snapshot["train_file"], "eval_file": snapshot["eval_file"],
              "human_agreement": ceiling["overall"]}  # fmt: skip
    line = f"Exported: {snapshot['train_pairs']} training pairs, {snapshot['test_pairs']} held out."
    return config, {**snapshot, "human_agreement": ceiling}, line


def _policy(stage: Stage, project: Project, data_dir: Path, options: dict) -> tuple[dict, dict, str]:
    inputs = run_inputs_write(stage=stage, project=project, data_dir=data_dir, options=ExportOptions(**options))
    config = {name: inputs[source] for name, source in stage.input_fields.items()}
    line = f"Inputs written: {inputs['train_prompts']} training prompts, {inputs['test_prompts']} held out"
    if "sft_rows" in inputs:
        line += f", {inputs['sft_rows']} best responses"
    if "train_pairs" in inputs:
        line += f", {inputs['train_pairs']} preference pairs"
    return config, inputs, line + "."
