"""Regenerate tests/data/engines/: the command-line flags of OpenRLHF's entry points and the config keys of verl's
PPO trainer, read from the engines' own sources. The bundle tests (tests/annotation/test_export_bundles.py) check
that every flag or key the bundles' scripts use is one of these.

    python scripts/engine_schemas.py --openrlhf ~/src/OpenRLHF --verl ~/src/verl --out tests/data/engines

--openrlhf: a checkout of OpenRLHF (reads openrlhf/cli/train_rm.py and openrlhf/cli/train_ppo_ray.py: the argparse
block under `if __name__ == "__main__":` is executed with argparse alone, so nothing of OpenRLHF is imported).
--verl: a checkout of verl (reads verl/trainer/config/_generated_ppo_trainer.yaml, the flattened Hydra config of
`python -m verl.trainer.main_ppo`). Pin the versions in annotation/exports/bundles/ when you regenerate.
"""

import argparse
import ast
import datetime
from pathlib import Path

import yaml


def openrlhf_flags(cli_file: Path) -> list[str]:
    """'--flag value' or '--flag switch' for every option of the entry point's parser."""
    tree = ast.parse(cli_file.read_text(encoding="utf-8"))
    main = next(
        node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    )  # the `if __name__ == "__main__":` block
    body = []
    for stmt in main.body:
        if "parse_args" in ast.unparse(stmt):
            break
        body.append(stmt)
    scope = {"argparse": argparse, "datetime": datetime.datetime}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(cli_file), "exec"), scope)  # noqa: S102 - a known file
    parser: argparse.ArgumentParser = scope["parser"]
    lines = []
    for action in parser._actions:  # noqa: SLF001 - the parser's own list of options
        kind = "switch" if action.nargs == 0 else "value"
        lines += [f"{option} {kind}" for option in action.option_strings if option.startswith("--")]
    return sorted(set(lines))


def verl_keys(generated_yaml: Path) -> list[str]:
    """Every dotted key of the flattened config (leaves and sections)."""
    config = yaml.safe_load(generated_yaml.read_text(encoding="utf-8"))
    keys: list[str] = []

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            keys.append(name)
            if isinstance(value, dict):
                walk(value, name + ".")

    walk(config, "")
    return sorted(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openrlhf", type=Path, required=True, help="OpenRLHF checkout")
    parser.add_argument("--openrlhf-version", required=True, help="e.g. 0.11.0 (tag v0.11.0)")
    parser.add_argument("--verl", type=Path, required=True, help="verl checkout")
    parser.add_argument("--verl-version", required=True, help="e.g. 0.7.0 (tag v0.7.0)")
    parser.add_argument("--out", type=Path, default=Path("tests/data/engines"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for entry in ("train_rm", "train_ppo_ray"):
        source = f"openrlhf/cli/{entry}.py"
        lines = openrlhf_flags(args.openrlhf / source)
        header = f"# OpenRLHF {args.openrlhf_version}, {source}: its argparse options (scripts/engine_schemas.py)\n"
        (args.out / f"openrlhf-{entry}.txt").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    source = "verl/trainer/config/_generated_ppo_trainer.yaml"
    header = f"# verl {args.verl_version}, {source}: every config key (scripts/engine_schemas.py)\n"
    keys = verl_keys(args.verl / source)
    (args.out / "verl-ppo_trainer.txt").write_text(header + "\n".join(keys) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
