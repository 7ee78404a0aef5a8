"""Seed the server tests' throwaway database through the services (run in a subprocess, never inside pytest's DB).

    DATABASE_URL=sqlite:////tmp/x.sqlite3 python -m tests.concurrency.seed --slug load --prompts 30 --labelers 50

Prints one JSON object: {"slug", "prompt_ids": [...], "labelers": [{"id", "username", "token"}, ...]}.
"""

import argparse
import json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slug", required=True)
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--responses", type=int, default=4)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--labelers", type=int, default=50)
    parser.add_argument("--lease-minutes", type=int, default=30)
    return parser.parse_args(argv)


def prompts_file(slug: str, prompts: int, responses: int) -> bytes:
    lines = [
        {
            "prompt": f"[{slug}] prompt {i}: explain something.",
            "responses": [f"answer {j} to {i}" for j in range(responses)],
        }
        for i in range(prompts)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def seed(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership
    from annotation.services.imports import prompts_import
    from annotation.services.projects import membership_set, project_create

    project = project_create(name=args.slug, slug=args.slug, overlap=args.overlap, lease_minutes=args.lease_minutes)
    prompts_import(project=project, data=prompts_file(args.slug, args.prompts, args.responses), filename="p.jsonl")
    labelers = []
    for i in range(args.labelers):
        user = get_user_model()(username=f"{args.slug}-labeler-{i}")
        user.set_unusable_password()  # token auth only; skips the deliberately slow password hasher
        user.save()
        membership_set(project=project, user=user, role=Membership.Role.LABELER)
        labelers.append({"id": user.pk, "username": user.username, "token": Token.objects.create(user=user).key})
    prompt_ids = list(project.prompts.order_by("id").values_list("id", flat=True))
    return {"slug": project.slug, "prompt_ids": prompt_ids, "labelers": labelers}


def main() -> None:
    args = parse_args()
    import django

    django.setup()
    print(json.dumps(seed(args)))


if __name__ == "__main__":
    main()
