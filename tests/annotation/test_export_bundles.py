"""Hand-off bundles for OpenRLHF and verl (`export_preferences --format openrlhf|verl`, the API, the admin page).

The data files are loaded the way the engines load them (`datasets.load_dataset("json"|"parquet")`, split "train":
openrlhf/datasets/utils.py, verl/utils/dataset/rl_dataset.py) and checked against the schema read in their sources
(see annotation/exports/bundles/). The scripts are run with stub `deepspeed` / `python3` executables that record
their arguments, so the tests see exactly what the engine would receive: every flag (OpenRLHF) or config key (verl)
must be one the engine's source defines (tests/data/engines/, generated from the pinned versions by
scripts/engine_schemas.py), every key or column they name must be in the data, every path must exist, and the
platform's default hyper-parameters must be what they pass.
"""

import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotation.exports import bundles
from annotation.models import Prompt
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, ranking_make

ENGINES = Path(__file__).resolve().parents[1] / "data" / "engines"
PLAIN = "plain"
CHAT = "chat"


def _project(slug: str, chat: bool) -> ProjectFactory:
    project = ProjectFactory(slug=slug)
    people = [labeler(project, username=f"{slug}-l{i}") for i in range(3)]
    for n in range(14):
        text = f"Question {n}: how do tides work?" if n % 2 else f"\n\nHuman: Tell me about topic {n}.\n\nAssistant:"
        prompt = PromptFactory(project=project, text=text, category="qa" if n % 2 else "chat", responses=4)
        if chat and n == 0:
            messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, topic 0?"}]
            Prompt.objects.filter(pk=prompt.pk).update(messages=messages)
        for person, ranks in zip(people, ([1, 2, 3, 4], [1, 3, 2, 4], [2, 1, 3, 3]), strict=True):
            ranking_make(prompt, person, ranks)  # the third ranking ties two responses
    return project


@pytest.fixture
def projects(db):
    return {PLAIN: _project("plain", chat=False), CHAT: _project("chatty", chat=True)}


def export(project, fmt: str, out: Path, *extra: str) -> dict:
    stdout = io.StringIO()
    call_command("export_preferences", "--project", project.slug, "--format", fmt, "--out", str(out),
                 "--test-ratio", "0.3", "--no-progress", *extra, stdout=stdout)  # fmt: skip
    meta = orjson.loads((out / "export_meta.json").read_bytes())
    meta["stdout"] = stdout.getvalue()
    return meta


def known(name: str) -> dict[str, str]:
    """{flag or key: 'value' | 'switch' | ''} from a list generated from the engine's source."""
    lines = (ENGINES / name).read_text().splitlines()
    assert lines[0].startswith("# ")
    return dict((line.split(" ") + [""])[:2] for line in lines[1:] if line)


def run_script(script: Path, tmp_path: Path, **env: str) -> list[str]:
    """Run a bundle script with stub deepspeed/python3 on PATH; returns the arguments the stub received."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    record = tmp_path / "argv.json"
    for name in ("deepspeed", "python3"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import json, sys; '
                        f"open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\" \"{record}\" \"$@\"\n")  # fmt: skip
        stub.chmod(0o755)
    environment = {"PATH": f"{stubs}:{os.environ['PATH']}", "HOME": str(tmp_path), **env}
    done = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(record.read_text())


def flags(argv: list[str], schema: dict[str, str]) -> dict[str, str | None]:
    """OpenRLHF's --flags with their values; every flag must be one its parser defines, with a value iff it takes
    one."""
    parsed, i = {}, 0
    while i < len(argv):
        flag = argv[i]
        assert flag in schema, f"{flag} is not an option of the OpenRLHF entry point"
        if schema[flag] == "value":
            assert i + 1 < len(argv) and not argv[i + 1].startswith("--"), f"{flag} needs a value"
            parsed[flag], i = argv[i + 1], i + 2
        else:
            parsed[flag], i = None, i + 1
    return parsed


def is_messages(feature) -> bool:
    """A `datasets` feature for a list of {role: string, content: string} (TRL's / the engines' chat form)."""
    inner = getattr(feature, "feature", None)
    return isinstance(inner, dict) and {k: v.dtype for k, v in inner.items()} == {"role": "string", "content": "string"}


def load(path: Path):
    from datasets import load_dataset

    kind = "parquet" if path.suffix == ".parquet" else "json"
    return load_dataset(kind, data_files=str(path), cache_dir=str(path.parent.parent / ".hf-cache"))["train"]


def chat_tokenizer(texts: list[str]):
    """A small tokenizer with a chat template (the fixture's: HH-style turns), as the engines call it."""
    from rlhf.training.causal_defaults import build_bpe_tokenizer

    return build_bpe_tokenizer(texts, vocab_size=300)


def jsonl_export(project, tmp_path: Path) -> dict[str, list[dict]]:
    out = tmp_path / "reference"
    export(project, "jsonl", out)
    return {split: [orjson.loads(x) for x in (out / f"{split}.jsonl").read_bytes().splitlines()]
            for split in ("train", "test")}  # fmt: skip


# --- OpenRLHF ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [PLAIN, CHAT])
def test_openrlhf_bundle_files_load_with_datasets_in_the_keys_and_chat_form_its_cli_reads(tmp_path, projects, kind):
    project = projects[kind]
    reference = jsonl_export(project, tmp_path)
    out = tmp_path / "bundle"
    meta = export(project, "openrlhf", out)

    assert meta["format"] == "openrlhf" and meta["bundle"]["version"] == bundles.OPENRLHF_VERSION
    assert sorted(meta["files"]) == sorted(
        ["README.md", "train_rm.sh", "train_ppo.sh"]
        + [f"data/{kind}_{split}.jsonl" for kind in ("rm", "prompts") for split in ("train", "test")]
    )
    for split in ("train", "test"):
        pairs, prompts = load(out / "data" / f"rm_{split}.jsonl"), load(out / "data" / f"prompts_{split}.jsonl")
        expected = [row for row in reference[split] if not row.get("tie")]
        assert pairs.num_rows == len(expected) == meta["counts"]["splits"][split]["pairs"] > 0
        assert set(pairs.column_names) == {"prompt", "chosen", "rejected"}
        assert all(is_messages(pairs.features[name]) for name in ("prompt", "chosen", "rejected"))
        assert all(len(c) == 1 and c[0]["role"] == "assistant" for c in list(pairs["chosen"]) + list(pairs["rejected"]))
        assert [c[0]["content"] for c in pairs["chosen"]] == [
            r["chosen"] if isinstance(r["chosen"], str) else r["chosen"][0]["content"] for r in expected
        ]
        assert is_messages(prompts.features["prompt"]) and prompts["datasource"][0] == f"rlhf-platform/{project.slug}"
        assert prompts["prompt_id"] == list(dict.fromkeys(r["prompt_id"] for r in expected))  # each prompt once

    # HH text becomes turns; a plain prompt one user turn; chat prompts keep their messages
    firsts = {row["prompt_id"]: row["prompt"] for row in map(orjson.loads, (out / "data/prompts_train.jsonl").open())}
    firsts |= {row["prompt_id"]: row["prompt"] for row in map(orjson.loads, (out / "data/prompts_test.jsonl").open())}
    for prompt in project.prompts.all():
        if prompt.messages:
            assert firsts[prompt.pk] == prompt.messages
        elif "Human:" in prompt.text:
            assert firsts[prompt.pk] == [{"role": "user", "content": prompt.text.split("Human: ")[1].split("\n")[0]}]
        else:
            assert firsts[prompt.pk] == [{"role": "user", "content": prompt.text}]


def test_openrlhf_scripts_call_its_entry_points_with_real_flags_the_data_keys_and_the_platform_defaults(
    tmp_path, projects
):
    out = tmp_path / "bundle"
    meta = export(projects[PLAIN], "openrlhf", out, "--margin", "rank-diff")
    defaults = bundles.platform_defaults()
    rm, ppo = defaults["reward_model"], defaults["ppo"]
    assert all(os.access(out / name, os.X_OK) for name in ("train_rm.sh", "train_ppo.sh"))

    argv = run_script(out / "train_rm.sh", tmp_path)
    assert argv[0] == "--num_gpus" and argv[2:4] == ["--module", "openrlhf.cli.train_rm"]  # as upstream's example
    rm_flags = flags(argv[4:], known("openrlhf-train_rm.txt"))
    train, test = load(Path(rm_flags["--data.dataset"])), load(Path(rm_flags["--eval.dataset"]))
    assert Path(rm_flags["--data.dataset"]) == out / "data" / "rm_train.jsonl" and test.num_rows > 0
    for key in ("--data.prompt_key", "--data.chosen_key", "--data.rejected_key"):
        assert rm_flags[key] in train.column_names and rm_flags[key] in test.column_names
    assert "--data.apply_chat_template" in rm_flags
    assert "--model.margin_loss_enable" in rm_flags and train.features["margin"].dtype == "float64"
    assert rm_flags["--model.model_name_or_path"] == bundles.DEFAULT_POLICY
    assert float(rm_flags["--adam.lr"]) == rm["learning_rate"] and int(rm_flags["--data.max_len"]) == rm["max_length"]
    assert float(rm_flags["--lr_warmup_ratio"]) == rm["warmup_ratio"] and int(rm_flags["--train.seed"]) == rm["seed"]
    micro, batch = int(rm_flags["--train.micro_batch_size"]), int(rm_flags["--train.batch_size"])
    assert micro == rm["per_device_train_batch_size"]
    assert batch == micro * rm["gradient_accumulation_steps"] * int(argv[1])
    assert batch <= train.num_rows  # at least one optimizer step

    argv = run_script(out / "train_ppo.sh", tmp_path, GPUS_PER_NODE="2", NNODES="2")
    assert argv[:2] == ["-m", "openrlhf.cli.train_ppo_ray"]
    ppo_flags = flags(argv[2:], known("openrlhf-train_ppo_ray.txt"))
    prompts = load(Path(ppo_flags["--data.prompt_dataset"]))
    assert ppo_flags["--data.input_key"] in prompts.column_names and "--data.apply_chat_template" in ppo_flags
    assert ppo_flags["--reward.model_name_or_path"] == str(out / "checkpoint" / "rm")  # where train_rm.sh writes
    assert ppo_flags["--actor.model_name_or_path"] == bundles.DEFAULT_POLICY
    assert ppo_flags["--actor.num_gpus_per_node"] == "2" and ppo_flags["--vllm.num_engines"] == "4"
    expected = {"--actor.adam.lr": ppo["learning_rate"], "--critic.adam.lr": ppo["learning_rate"],
                "--algo.kl.init_coef": ppo["kl_coef"], "--actor.eps_clip": ppo["cliprange"],
                "--critic.value_clip": ppo["cliprange_value"], "--algo.advantage.gamma": ppo["gamma"],
                "--algo.advantage.lambd": ppo["lam"], "--rollout.temperature": ppo["temperature"],
                "--rollout.max_new_tokens": ppo["response_length"], "--train.max_epochs": ppo["num_ppo_epochs"],
                "--data.max_len": ppo["max_prompt_length"] + ppo["response_length"]}  # fmt: skip
    assert {flag: float(ppo_flags[flag]) for flag in expected} == expected
    assert ppo_flags["--algo.kl.estimator"] == ppo["kl_estimator"]
    batch = int(ppo_flags["--rollout.batch_size"])
    assert batch <= prompts.num_rows and batch % int(ppo_flags["--train.micro_batch_size"]) == 0
    assert batch * int(ppo_flags["--train.num_episodes"]) >= ppo["total_episodes"]

    readme = (out / "README.md").read_text()
    assert f"openrlhf=={bundles.OPENRLHF_VERSION}" in readme and bundles.OPENRLHF_COMMIT in readme
    assert all(f"`{path}`" in readme for path in bundles.OPENRLHF_SOURCES)
    assert "`--adam.lr 3e-05`" in readme.replace(repr(rm["learning_rate"]), "3e-05")
    assert "openrlhf 0.11.0 bundle: train_ppo.sh, train_rm.sh" in meta["stdout"]


def test_openrlhf_rows_render_through_a_chat_template_as_its_datasets_do(tmp_path, projects):
    """reward_dataset.py: prompt = apply_chat_template(prompt, add_generation_prompt=True), chosen =
    apply_chat_template(prompt + chosen)[len(prompt):]; prompts_dataset.py: apply_chat_template(input, ...)."""
    out = tmp_path / "bundle"
    export(projects[CHAT], "openrlhf", out)
    pairs = [orjson.loads(line) for line in (out / "data" / "rm_train.jsonl").read_bytes().splitlines()]
    tokenizer = chat_tokenizer([m["content"] for row in pairs for m in row["prompt"] + row["chosen"]])

    for row in pairs:
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(row["prompt"] + row["chosen"], tokenize=False)
        assert full.startswith(prompt) and full[len(prompt) :].strip() == row["chosen"][0]["content"]
    for line in (out / "data" / "prompts_train.jsonl").read_bytes().splitlines():
        assert tokenizer.apply_chat_template(orjson.loads(line)["prompt"], tokenize=False, add_generation_prompt=True)


# --- verl ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [PLAIN, CHAT])
def test_verl_bundle_parquet_has_its_rl_dataset_columns_and_types(tmp_path, projects, kind):
    from datasets import Value

    project = projects[kind]
    reference = jsonl_export(project, tmp_path)
    out = tmp_path / "bundle"
    meta = export(project, "verl", out)

    assert meta["format"] == "verl" and meta["bundle"]["version"] == bundles.VERL_VERSION
    for split in ("train", "test"):
        rows = load(out / "data" / f"{split}.parquet")
        expected = list(dict.fromkeys(r["prompt_id"] for r in reference[split] if not r.get("tie")))
        assert rows.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
        features = rows.features
        assert features["data_source"] == Value("string") and features["ability"] == Value("string")
        assert is_messages(features["prompt"])
        assert features["reward_model"] == {"style": Value("string"), "ground_truth": Value("string")}
        assert features["extra_info"]["split"] == Value("string") and features["extra_info"]["index"] == Value("int64")
        assert [info["prompt_id"] for info in rows["extra_info"]] == expected and len(expected) > 0
        assert [info["index"] for info in rows["extra_info"]] == list(range(len(expected)))
        assert {info["split"] for info in rows["extra_info"]} == {split}
        assert set(rows["ability"]) == {"alignment"} and {r["style"] for r in rows["reward_model"]} == {"model"}
        # ground truth: the response chosen most often for that prompt (labelers 1 and 2 put response 0 first)
        first = next(r for r in reference[split] if r["prompt_id"] == expected[0])
        assert rows["reward_model"][0]["ground_truth"] in str(first["chosen"])

        pairs = load(out / "reward_model" / f"{split}.parquet")
        assert pairs.column_names == ["prompt", "chosen", "rejected"]
        assert all(is_messages(pairs.features[name]) for name in pairs.column_names)
        assert pairs.num_rows == meta["counts"]["splits"][split]["pairs"]

    rows = load(out / "data" / "train.parquet")
    tokenizer = chat_tokenizer([m["content"] for prompt in rows["prompt"] for m in prompt])
    for prompt in rows["prompt"]:  # rl_dataset.py's length filter: apply_chat_template(doc[prompt_key], ...)
        assert tokenizer.apply_chat_template(prompt, add_generation_prompt=True)


def test_verl_run_ppo_uses_real_config_keys_the_data_columns_a_model_reward_and_the_platform_defaults(
    tmp_path, projects
):
    out = tmp_path / "bundle"
    export(projects[PLAIN], "verl", out)
    ppo = bundles.platform_defaults()["ppo"]
    keys = known("verl-ppo_trainer.txt")

    failed = subprocess.run(["bash", str(out / "run_ppo.sh")], capture_output=True, text=True, timeout=30)
    assert failed.returncode != 0 and "set REWARD_MODEL" in failed.stderr

    argv = run_script(out / "run_ppo.sh", tmp_path, REWARD_MODEL="/models/rm", GPUS_PER_NODE="4")
    assert argv[:2] == ["-m", "verl.trainer.main_ppo"]
    overrides = dict(arg.split("=", 1) for arg in argv[2:])
    assert len(overrides) == len(argv) - 2 and set(overrides) <= set(keys), set(overrides) - set(keys)
    train, val = load(Path(overrides["data.train_files"])), load(Path(overrides["data.val_files"]))
    assert Path(overrides["data.train_files"]) == out / "data" / "train.parquet"
    for key in ("data.prompt_key", "data.reward_fn_key"):
        assert overrides[key] in train.column_names and overrides[key] in val.column_names
    assert overrides["reward_model.enable"] == "True" and overrides["reward_model.model.path"] == "/models/rm"
    assert overrides["actor_rollout_ref.model.path"] == overrides["critic.model.path"] == bundles.DEFAULT_POLICY
    assert overrides["trainer.n_gpus_per_node"] == "4"
    expected = {"actor_rollout_ref.actor.optim.lr": ppo["learning_rate"], "critic.optim.lr": ppo["learning_rate"],
                "algorithm.kl_ctrl.kl_coef": ppo["kl_coef"], "actor_rollout_ref.actor.clip_ratio": ppo["cliprange"],
                "critic.cliprange_value": ppo["cliprange_value"], "algorithm.gamma": ppo["gamma"],
                "algorithm.lam": ppo["lam"], "actor_rollout_ref.rollout.temperature": ppo["temperature"],
                "data.max_response_length": ppo["response_length"],
                "data.max_prompt_length": ppo["max_prompt_length"],
                "actor_rollout_ref.actor.ppo_epochs": ppo["num_ppo_epochs"]}  # fmt: skip
    assert {key: float(overrides[key]) for key in expected} == expected
    assert overrides["algorithm.kl_penalty"] == {"k1": "kl", "k3": "low_var_kl"}[ppo["kl_estimator"]]
    batch = int(overrides["data.train_batch_size"])
    assert batch <= train.num_rows and batch * int(overrides["trainer.total_epochs"]) >= ppo["total_episodes"]

    readme = (out / "README.md").read_text()
    assert f"verl=={bundles.VERL_VERSION}" in readme and bundles.VERL_COMMIT in readme
    assert all(f"`{path}`" in readme for path in bundles.VERL_SOURCES)


# --- the other entry points, and the pins -------------------------------------------------------------------------


def test_api_and_admin_page_send_a_bundle_as_a_zip_with_executable_scripts(tmp_path, projects):
    project = projects[PLAIN]
    boss = manager(project, username="boss", is_staff=True)
    response = api_client(boss).get(f"/api/projects/{project.slug}/export/?format=verl&test_ratio=0.3")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="plain-verl.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        names = set(zf.namelist())
        mode = zf.getinfo("plain-verl/run_ppo.sh").external_attr >> 16
        meta = orjson.loads(zf.read("plain-verl/export_meta.json"))
        zf.extractall(tmp_path / "unzipped")
    assert {f"plain-verl/{name}" for name in meta["files"]} | {"plain-verl/export_meta.json"} == names
    assert mode & stat.S_IXUSR and load(tmp_path / "unzipped" / "plain-verl" / "data" / "train.parquet").num_rows
    assert api_client(labeler(project, username="nope")).get(f"/api/projects/{project.slug}/export/?format=verl")\
        .status_code == 403  # fmt: skip

    client = api_client(boss)
    client.force_login(boss)
    page = client.post(reverse("admin:annotation_project_export", args=[project.pk]), {
        "format": "openrlhf", "strategy": "all", "ties": "drop", "margin": "none", "test_ratio": "0.3",
        "min_labelers": "1", "exclude_flags": "all", "categories": "",
    })  # fmt: skip
    assert page.status_code == 200 and page["Content-Disposition"] == 'attachment; filename="plain-openrlhf.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(page.streaming_content))) as zf:
        assert {"plain-openrlhf/train_rm.sh", "plain-openrlhf/data/rm_train.jsonl"} <= set(zf.namelist())


def test_command_lists_the_bundle_formats_and_refuses_an_unsafe_file_with_them(tmp_path, projects, capsys):
    with pytest.raises(CommandError, match="--unsafe-file does not go with --format verl"):
        export(projects[PLAIN], "verl", tmp_path, "--unsafe-file", str(tmp_path / "u.jsonl"))
    with pytest.raises(SystemExit):
        call_command("export_preferences", "--help")
    text = capsys.readouterr().out
    assert "--format openrlhf" in text and "--format verl" in text


def test_engine_schema_lists_are_of_the_pinned_versions():
    """Bumping a pin means regenerating tests/data/engines/ from that version (scripts/engine_schemas.py)."""
    for name in ("openrlhf-train_rm.txt", "openrlhf-train_ppo_ray.txt"):
        header = (ENGINES / name).read_text().splitlines()[0]
        assert f"OpenRLHF {bundles.OPENRLHF_VERSION} " in header and bundles.OPENRLHF_COMMIT[:7] in header
    header = (ENGINES / "verl-ppo_trainer.txt").read_text().splitlines()[0]
    assert f"verl {bundles.VERL_VERSION} " in header and bundles.VERL_COMMIT[:7] in header


def test_batch_plan_splits_evenly_over_micro_batches_and_gpus():
    assert bundles.batch_plan(5000, 8) == (1024, 8, 8)
    assert bundles.batch_plan(24, 8) == (24, 8, 1)
    assert bundles.batch_plan(40, 8) == (40, 8, 1) and bundles.batch_plan(48, 8) == (48, 8, 2)
    assert bundles.batch_plan(3, 8) == (3, 3, 1) and bundles.batch_plan(0, 8) == (1, 1, 1)
    for items in range(1, 300, 7):
        batch, micro, gpus = bundles.batch_plan(items, 8)
        assert batch <= items and batch % (micro * gpus) == 0


def test_docs_name_the_bundle_formats_and_the_pinned_versions():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
    assert f"OpenRLHF **{bundles.OPENRLHF_VERSION}**" in docs and f"verl **{bundles.VERL_VERSION}**" in docs
    assert "--format openrlhf" in docs and "--format verl" in docs and "?format=openrlhf" in docs


@pytest.mark.parametrize("fmt", ["openrlhf", "verl"])
def test_a_project_without_rankings_gives_an_empty_bundle_with_every_file_and_schema(tmp_path, db, fmt):
    import pyarrow.parquet as pq

    project = ProjectFactory(slug="empty")
    PromptFactory(project=project)
    meta = export(project, fmt, tmp_path / "b")

    assert meta["bundle"]["counts"] == {"rm_train_pairs": 0, "train_prompts": 0, "rm_test_pairs": 0, "test_prompts": 0}
    data = sorted(name for name in meta["files"] if name.endswith((".jsonl", ".parquet")))
    assert data and all((tmp_path / "b" / name).exists() for name in data)
    for name in data:  # (datasets refuses to load an empty file; so would the engines)
        if name.endswith(".parquet"):
            table = pq.read_table(tmp_path / "b" / name)
            assert table.num_rows == 0 and "prompt" in table.column_names
        else:
            assert (tmp_path / "b" / name).read_bytes() == b""
    assert "0 training prompts" in (tmp_path / "b" / "README.md").read_text()
