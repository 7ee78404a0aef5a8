"""`manage.py run_ppo --project SLUG --reward-run ID [--policy RUN_OR_PATH] [PPO flags]`: queue a PPO run on a
project's train-side prompts (default, returns at once), or train it here with a progress bar (--foreground)."""

from argparse import RawDescriptionHelpFormatter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rlhf.management.commands._training_cli import add_config_flags, config_from, creator, project_get, queue_or_train
from rlhf.models import TrainingRun
from rlhf.services.boundary import boundary_warnings
from rlhf.services.ppo import policy_run_create
from rlhf.training.ppo_config import PPO_RECIPES, PPO_RECIPES_HELP
from rlhf.training.registry import STAGES

PROMPTS = lambda run: f"{run.export['train_prompts']} training prompts, {run.export['test_prompts']} held out"  # noqa: E731
EXAMPLES = """
examples:
  # PPO of an earlier SFT run (run 3) against reward-model run 4 (trained from run 3: same tokenizer); queued
  python manage.py run_ppo --project helpfulness --reward-run 4 --policy run:3
  # here and now, with a progress bar; a few episodes, a stronger KL penalty
  python manage.py run_ppo --project helpfulness --reward-run 4 --policy run:3 --foreground \\
      --total-episodes 64 --kl-coef 0.1 --response-length 32
  # SmolLM2 on a CPU with the measured recipe (LoRA, adaptive KL; docs/training-ppo.md), 512 episodes instead of 1,792
  python manage.py run_ppo --project helpfulness --reward-run 4 --recipe smollm2-cpu --total-episodes 512
  # any causal LM path or Hugging Face id; LoRA
  python manage.py run_ppo --project helpfulness --reward-run 4 --policy ./my-sft-model --use-lora --lora-r 8
  # with a second opinion (reward-model run 5: another seed or split) to catch reward hacking
  python manage.py run_ppo --project helpfulness --reward-run 4 --second-reward-run 5 --policy run:3
  # the reward as the mean of an ensemble (runs 4, 6 and 7: the same recipe on three seeds), run 5 the second opinion
  python manage.py run_ppo --project helpfulness --reward-run 4 --ensemble-reward-run 6 7 --second-reward-run 5

Without --policy, the policy is the model the reward-model run started from (its base_model). A reward model on
another tokenizer than the policy's (the MiniLM default) is read through a re-encoding wrapper: each response is
decoded and re-encoded for it, and the value model starts from the policy with a new value head.
Every field of rlhf.training.ppo_config.PPORunConfig has a flag; unset flags keep the dataclass defaults (TRL's), or
the recipe's with --recipe.
"""


class Command(BaseCommand):
    help = "PPO of a policy against a reward-model run on a project's prompts: queued for the worker, or --foreground."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=RawDescriptionHelpFormatter, epilog=EXAMPLES, **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG", help="Whose train-side prompts PPO samples.")
        parser.add_argument("--reward-run", type=int, required=True, metavar="ID", help="A succeeded reward-model run.")
        parser.add_argument("--second-reward-run", type=int, default=None, metavar="ID",
                            help="A second reward-model run PPO does not optimise: held-out samples are scored by "
                            "both and a growing gap is flagged as possible reward hacking.")  # fmt: skip
        parser.add_argument("--ensemble-reward-run", type=int, nargs="+", default=[], metavar="ID",
                            help="More reward-model runs scored with --reward-run as one ensemble: PPO optimises "
                            "their combined reward (--reward-ensemble-mode) and reports each one's gain.")  # fmt: skip
        parser.add_argument("--policy", default="", metavar="RUN_OR_PATH",
                            help="'run:ID' (an SFT/PPO/DPO/GRPO/chain run), a local path or a model id "
                            "(default: the reward-model run's base model).")  # fmt: skip
        parser.add_argument("--recipe", default="", choices=["", *PPO_RECIPES],
                            help=f"Named settings the flags below override: {PPO_RECIPES_HELP}")  # fmt: skip
        parser.add_argument("--name", default="", help="A name for the run.")
        parser.add_argument("--foreground", action="store_true", help="Train in this process, with a progress bar.")
        parser.add_argument("--test-ratio", type=float, default=None, help="Share of prompts held out (default 0.1).")
        parser.add_argument("--user", default=None, metavar="USERNAME", help="Record this user as the run's creator.")
        parser.add_argument("--site-url", default="http://127.0.0.1:8000", help="Base URL printed with the run page.")
        add_config_flags(parser, STAGES["ppo"].config, set(STAGES["ppo"].managed))

    def handle(self, *args, project, reward_run, second_reward_run, ensemble_reward_run, policy, recipe, name,
               foreground, test_ratio, user, site_url, **options):  # fmt: skip
        target = project_get(project)
        reward = TrainingRun.objects.filter(pk=reward_run).first()
        if reward is None:
            raise CommandError(f"No run {reward_run}.")
        policy = policy or str(reward.config.get("base_model") or "")
        export = {"test_ratio": test_ratio} if test_ratio is not None else {}
        try:
            run = policy_run_create(
                project=target, kind=TrainingRun.Kind.PPO, user=creator(user), name=name, config=config_from(options),
                policy=policy, reward_run=reward, second_reward_run=second_reward_run,
                ensemble_reward_runs=ensemble_reward_run, export_options=export, recipe=recipe,
                enqueue=not foreground,
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        for warning in boundary_warnings(run.export.get("boundary")):  # most prompts out of the reward model's range
            self.stderr.write(self.style.WARNING(f"WARNING: {warning}"))
        run = queue_or_train(self, run, counts=PROMPTS, site_url=site_url, foreground=foreground)
        if run is None:
            return
        metrics = run.metrics
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} succeeded. Policy: {run.output_dir}"))
        self.stdout.write(
            f"  held-out reward {metrics.get('ppo/eval_reward_before')} -> {metrics.get('ppo/eval_reward_after')} "
            f"({metrics.get('ppo/eval_reward_gain_std')} sd); KL {metrics.get('ppo/kl_final')} nats"
        )
        if metrics.get("ppo/distinct2_ratio") is not None:
            self.stdout.write(
                f"  distinct-2 x{metrics['ppo/distinct2_ratio']:.2f}, "
                f"length x{metrics.get('ppo/length_ratio', 0):.2f}, "
                f"perplexity under the reference x{metrics.get('ppo/perplexity_ratio', 0):.2f}; best-of-4 from the "
                f"reference {metrics.get('ppo/best_of_4_reward_gain_std')} sd"
            )
        for warning in metrics.get("warnings") or []:
            self.stdout.write(self.style.WARNING(f"  WARNING: {warning}"))
