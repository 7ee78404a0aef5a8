"""Issue #12, item 8: a corpus of bad inputs over every endpoint that takes input (import, submit, revise, skip,
guidelines, project settings, members, export parameters, run configs, generation, scoring, admin forms).

Each case asserts the status, a message that names the problem, and that nothing was stored: the counts of prompts,
responses, rankings and runs, and every project's settings, guidelines and members, are unchanged.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Guideline, Membership, Project, Prompt, Ranking, Response
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from rlhf.models import TrainingRun
from tests.annotation.api._helpers import api_client
from tests.factories import AdminFactory, ProjectFactory, PromptFactory, labeler, manager

DEEP = 100_000
BIG = "9" * 40
HUGE = "9" * 5000


@dataclass
class Case:
    who: str  # lab | mgr | admin
    method: str
    path: str  # {slug}, {task}, {ranking}, {run}
    status: int
    message: str
    body: Any = None
    kind: str = "json"  # json | raw (a JSON text sent as is) | file (an import upload) | query
    extra: dict = field(default_factory=dict)


def imp(content: bytes | str, message: str, name: str = "bad.jsonl", **extra) -> Case:
    content = content.encode() if isinstance(content, str) else content
    return Case("mgr", "post", "/api/projects/{slug}/import/", 400, message, content, "file", {"name": name, **extra})


GOOD_LINE = '{"prompt": "Fine?", "responses": ["a", "b"]}\n'
CASES: dict[str, Case] = {
    # --- import ---------------------------------------------------------------------------------------------------
    "import empty file": imp("", "file: The submitted file is empty."),
    "import blank lines only": imp("\n\n  \n", "The file holds no prompts."),
    "import missing prompt": imp('{"responses": ["a", "b"]}', "line 1: missing field 'prompt'"),
    "import missing responses": imp('{"prompt": "Q"}', "line 1: missing field 'responses'"),
    "import one response": imp('{"prompt": "Q", "responses": ["a"]}', "line 1: 1 responses"),
    "import eleven responses": imp('{{"prompt": "Q", "responses": {}}}'.format(["r"] * 11), "line 1: invalid JSON"),
    "import eleven distinct responses": imp(
        '{{"prompt": "Q", "responses": [{}]}}'.format(", ".join(f'"r{i}"' for i in range(11))), "line 1: 11 responses"
    ),
    "import empty prompt": imp('{"prompt": "  ", "responses": ["a", "b"]}', "line 1: 'prompt' is empty"),
    "import prompt a number": imp('{"prompt": 5, "responses": ["a", "b"]}', "line 1: 'prompt' must be a string"),
    "import prompt null": imp('{"prompt": null, "responses": ["a", "b"]}', "line 1: missing field 'prompt'"),
    "import response a number": imp('{"prompt": "Q", "responses": [1, "b"]}', "line 1: response 1 must be a string"),
    "import response without text": imp('{"prompt": "Q", "responses": [{"t": 1}, "b"]}', "response 1 is an object"),
    "import responses a string": imp('{"prompt": "Q", "responses": "ab"}', "line 1: 'responses' must be a list"),
    "import text too long": imp('{"prompt": "%s", "responses": ["a", "b"]}' % ("x" * 50_001), "the limit is 50,000"),
    "import invalid JSON": imp('{"prompt": "Q", "responses": ["a", "b"', "line 1: invalid JSON"),
    "import a JSON list line": imp('["Q", "a", "b"]', "line 1: expected a JSON object, got list"),
    "import a JSON string line": imp('"Q"', "line 1: expected a JSON object, got str"),
    "import bad UTF-8": imp(b'{"prompt": "caf\xe9", "responses": ["a", "b"]}', "line 1: bad encoding"),
    "import second line bad": imp(GOOD_LINE + '{"prompt": ""}', "line 2: "),
    "import chat without role": imp('{"prompt": [{"content": "hi"}], "responses": ["a", "b"]}', "chat message 1"),
    "import chat unknown role": imp(
        '{"prompt": [{"role": "god", "content": "hi"}], "responses": ["a", "b"]}', "unknown role 'god'"
    ),
    "import chat role a list": imp(
        '{"prompt": [{"role": ["user"], "content": "hi"}], "responses": ["a", "b"]}', "unknown role"
    ),
    "import chat empty list": imp('{"prompt": [], "responses": ["a", "b"]}', "empty list of chat messages"),
    "import lone surrogate": imp('{"prompt": "x \\ud800", "responses": ["a", "b"]}', "lone surrogate"),
    "import lone surrogate in a response": imp('{"prompt": "Q", "responses": ["\\udc00", "b"]}', "lone surrogate"),
    "import NUL": imp('{"prompt": "x \\u0000 y", "responses": ["a", "b"]}', "NUL character"),
    "import NaN": imp('{"prompt": "Q", "responses": ["a", "b"], "score": NaN}', "NaN is not a JSON number"),
    "import Infinity": imp('{"prompt": "Q", "responses": ["a", "b"], "s": Infinity}', "Infinity is not a JSON"),
    "import -Infinity": imp('{"prompt": "Q", "responses": ["a", "b"], "s": -Infinity}', "Infinity is not a JSON"),
    "import 5000-digit integer": imp(
        f'{{"prompt": "Q", "responses": ["a", "b"], "n": {HUGE}}}', "a number with too many digits"
    ),
    "import 30-digit integer": imp('{"prompt": "Q", "responses": ["a", "b"], "n": %s}' % ("9" * 30), "digits"),
    "import nested 100000 deep": imp(
        '{"prompt": "Q", "responses": ["a", "b"], "x": ' + "[" * DEEP + "]" * DEEP + "}", "nested too deeply"
    ),
    "import metadata nested 30 deep": imp(
        '{"prompt": "Q", "responses": ["a", "b"], "x": ' + "[" * 30 + "]" * 30 + "}", "nested more than"
    ),
    "import metadata a list": imp('{"prompt": "Q", "responses": ["a", "b"], "metadata": [1]}', "'metadata' must be"),
    "import metadata a string": imp('{"prompt": "Q", "responses": ["a", "b"], "metadata": "m"}', "'metadata' must"),
    "import response metadata a list": imp(
        '{"prompt": "Q", "responses": [{"text": "a", "metadata": [1]}, "b"]}', "response 1 'metadata' must be"
    ),
    "import response metadata a string": imp(
        '{"prompt": "Q", "responses": [{"text": "a", "metadata": "m"}, "b"]}', "response 1 'metadata' must be"
    ),
    "import model an object": imp(
        '{"prompt": "Q", "responses": [{"text": "a", "model": {}}, "b"]}', "response 1 'model' must be a string"
    ),
    "import category a list": imp('{"prompt": "Q", "responses": ["a", "b"], "category": []}', "'category' must"),
    "import id an object": imp('{"prompt": "Q", "responses": ["a", "b"], "id": {"a": 1}}', "'id' must be a string"),
    "import pairwise without rejected": imp(
        '{"prompt": "Q", "chosen": "a"}', "missing field 'rejected'", kind_choice="pairwise"
    ),
    "import CSV extra values": imp("prompt,response_1,response_2\nQ,a,b,c\n", "more values than header", "x.csv"),
    "import CSV without prompt column": imp("question,response_1\nQ,a\n", "missing column 'prompt'", "x.csv"),
    "import CSV one response": imp("prompt,response_1\nQ,a\n", "1 responses", "x.csv"),
    "import unknown kind": imp(GOOD_LINE, 'kind: "bogus" is not a valid choice.', kind_choice="bogus"),
    "import no file": Case(
        "mgr", "post", "/api/projects/{slug}/import/", 400, "file: No file was submitted.", {}, "form"
    ),
    # --- submit -----------------------------------------------------------------------------------------------------
    "submit empty body": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "ranks: This field is required.", "{}", "raw"
    ),  # fmt: skip
    "submit ranks empty": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "ranks: ", {"ranks": []}),
    "submit ranks a string": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "ranks: ", {"ranks": "1,2"}),
    "submit ranks an object": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "ranks: ", {"ranks": {"1": 1}}),
    "submit rank superscript": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "rank: A valid integer", "²"),
    "submit rank circled": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "rank: A valid integer", "①"),
    "submit rank 5000 digits": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "String value too large", HUGE),
    "submit rank null": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "rank: This field may not be null", "nullrank"
    ),  # fmt: skip
    "submit rank 1.5": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "rank: A valid integer", 1.5),
    "submit rank 0": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "outside 1..", 0),
    "submit rank 99": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "outside 1..", 99),
    "submit rank 10^30": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "outside 1..", 10**30),
    "submit rank true": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "rank: A valid integer", True),
    "submit ranks not dense": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "Ranks must be dense", "dense"),
    "submit response missing": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "has no rank", "missing"),
    "submit foreign response": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "is not one of", "foreign"),
    "submit duplicate response": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "ranked more than once", "dup"),
    "submit response id 10^30": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "response_id: Ensure", "bigid"),
    "submit eleven ranks": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "ranks: ", "eleven"),
    "submit unknown flag": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "Unknown flag 'nope'", {"flags": ["nope"]}
    ),  # fmt: skip
    "submit flags a string": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "flags: ", {"flags": "unsafe"}),
    "submit flag too long": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "flags[0]: ", {"flags": ["x" * 51]}),
    "submit rationale too long": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "rationale: ", {"rationale": "x" * 10_001}
    ),  # fmt: skip
    "submit rationale a list": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "rationale: ", {"rationale": ["x"]}
    ),  # fmt: skip
    "submit negative time": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "time_spent_s: ", {"time_spent_s": -1}
    ),  # fmt: skip
    "submit time nan": Case(
        "lab",
        "post",
        "/api/tasks/{task}/submit/",
        400,
        "time_spent_s: A valid number is required",
        {"time_spent_s": "nan"},
    ),  # fmt: skip
    "submit time inf": Case(
        "lab",
        "post",
        "/api/tasks/{task}/submit/",
        400,
        "time_spent_s: A valid number is required",
        {"time_spent_s": "inf"},
    ),  # fmt: skip
    "submit body nested deep": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "nested", '{"ranks": ' + "[" * DEEP + "]" * DEEP + "}", "raw"
    ),  # fmt: skip
    "submit body NaN": Case(
        "lab", "post", "/api/tasks/{task}/submit/", 400, "JSON parse error", '{"ranks": [], "time_spent_s": NaN}', "raw"
    ),  # fmt: skip
    "submit body huge number": Case(
        "lab",
        "post",
        "/api/tasks/{task}/submit/",
        400,
        "JSON parse error",
        f'{{"ranks": [], "time_spent_s": {HUGE}}}',
        "raw",
    ),  # fmt: skip
    "submit lone surrogate": Case(
        "lab",
        "post",
        "/api/tasks/{task}/submit/",
        400,
        "lone surrogate",
        '{"ranks": [], "rationale": "\\ud800"}',
        "raw",
    ),  # fmt: skip
    "submit NUL": Case(
        "lab",
        "post",
        "/api/tasks/{task}/submit/",
        400,
        "NUL character",
        '{"ranks": [], "rationale": "a\\u0000b"}',
        "raw",
    ),  # fmt: skip
    "submit invalid JSON": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "JSON parse error", "{", "raw"),
    "submit JSON a list": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "", "[1, 2]", "raw"),
    "submit JSON null": Case("lab", "post", "/api/tasks/{task}/submit/", 400, "", "null", "raw"),
    "submit someone else's task": Case("mgr", "post", "/api/tasks/{task}/submit/", 404, "No such task.", "valid"),
    "submit no such task": Case("lab", "post", f"/api/tasks/{BIG}/submit/", 404, "No such task.", "valid"),
    # --- revise -----------------------------------------------------------------------------------------------------
    "revise empty body": Case(
        "lab", "post", "/api/rankings/{ranking}/revise/", 400, "ranks: This field is required", "{}", "raw"
    ),  # fmt: skip
    "revise rank superscript": Case("lab", "post", "/api/rankings/{ranking}/revise/", 400, "A valid integer", "²"),
    "revise ranks not dense": Case("lab", "post", "/api/rankings/{ranking}/revise/", 400, "dense", "dense"),
    "revise foreign response": Case("lab", "post", "/api/rankings/{ranking}/revise/", 400, "is not one of", "foreign"),
    "revise deep body": Case(
        "lab", "post", "/api/rankings/{ranking}/revise/", 400, "nested", "[" * DEEP + "]" * DEEP, "raw"
    ),  # fmt: skip
    "revise lone surrogate": Case(
        "lab",
        "post",
        "/api/rankings/{ranking}/revise/",
        400,
        "lone surrogate",
        '{"ranks": [], "rationale": "\\udfff"}',
        "raw",
    ),  # fmt: skip
    "revise someone else's": Case("mgr", "post", "/api/rankings/{ranking}/revise/", 404, "No such ranking.", "valid"),
    "revise no such ranking": Case("lab", "post", f"/api/rankings/{BIG}/revise/", 404, "No such ranking.", "valid"),
    # --- skip -------------------------------------------------------------------------------------------------------
    "skip someone else's task": Case("mgr", "post", "/api/tasks/{task}/skip/", 404, "No such task", None),
    "skip no such task": Case("lab", "post", f"/api/tasks/{BIG}/skip/", 404, "No such task", None),
    "skip by outsider": Case("admin", "post", "/api/tasks/{task}/skip/", 404, "No such task", None),
    # --- guidelines -------------------------------------------------------------------------------------------------
    "guidelines no text": Case(
        "mgr", "post", "/api/projects/{slug}/guidelines/", 400, "text: This field is required", {}
    ),  # fmt: skip
    "guidelines empty text": Case(
        "mgr", "post", "/api/projects/{slug}/guidelines/", 400, "text: This field may not", {"text": ""}
    ),  # fmt: skip
    "guidelines text too long": Case(
        "mgr", "post", "/api/projects/{slug}/guidelines/", 400, "text: Ensure", {"text": "x" * 100_001}
    ),  # fmt: skip
    "guidelines text an object": Case(
        "mgr", "post", "/api/projects/{slug}/guidelines/", 400, "text: Not a valid", {"text": {"a": 1}}
    ),  # fmt: skip
    "guidelines lone surrogate": Case(
        "mgr", "post", "/api/projects/{slug}/guidelines/", 400, "lone surrogate", '{"text": "\\ud800"}', "raw"
    ),  # fmt: skip
    "guidelines by a labeler": Case("lab", "post", "/api/projects/{slug}/guidelines/", 403, "managers", {"text": "x"}),
    # --- project settings -------------------------------------------------------------------------------------------
    **{
        f"settings {name}": Case("mgr", "patch", "/api/projects/{slug}/", 400, message, body)
        for name, body, message in [
            ("overlap 0", {"overlap": 0}, "overlap: Ensure"),
            ("overlap -1", {"overlap": -1}, "overlap: Ensure"),
            ("overlap 10^12", {"overlap": 10**12}, "overlap: Ensure"),
            ("overlap a word", {"overlap": "three"}, "overlap: A valid integer"),
            ("lease 0", {"lease_minutes": 0}, "lease_minutes: Ensure"),
            ("lease 10^12", {"lease_minutes": 10**12}, "lease_minutes: Ensure"),
            ("lease 1e3", {"lease_minutes": "1e3"}, "lease_minutes: A valid integer"),
            ("allow_ties maybe", {"allow_ties": "maybe"}, "allow_ties: Must be a valid boolean"),
            ("flag_options a string", {"flag_options": "unsafe"}, "flag_options: "),
            ("flag_options numbers", {"flag_options": [1, 2]}, "flag_options"),
            ("flag_options without label", {"flag_options": [{"key": "a"}]}, "flag_options: Flag option 1"),
            ("flag key with a space", {"flag_options": [{"key": "a b", "label": "x"}]}, "flag_options[0].key"),
            (
                "flag keys repeated",
                {"flag_options": [{"key": "a", "label": "x"}, {"key": "a", "label": "y"}]},
                "appears more than once",
            ),
            ("responses_per_task 1", {"responses_per_task": 1}, "responses_per_task: Ensure"),
            ("responses_per_task 11", {"responses_per_task": 11}, "responses_per_task: Ensure"),
            ("gold_rate 2", {"gold_rate": 2}, "gold_rate: Ensure"),
            ("gold_rate -0.1", {"gold_rate": -0.1}, "gold_rate: Ensure"),
            ("gold_rate nan", {"gold_rate": "nan"}, "gold_rate: A valid number is required"),
            ("name empty", {"name": ""}, "name: This field may not be blank"),
            ("name too long", {"name": "x" * 201}, "name: Ensure"),
        ]
    },  # fmt: skip
    "settings by a labeler": Case("lab", "patch", "/api/projects/{slug}/", 403, "managers", {"overlap": 2}),
    "create project bad slug": Case("admin", "post", "/api/projects/", 400, "slug: ", {"name": "X", "slug": "a b"}),
    "create project taken slug": Case("admin", "post", "/api/projects/", 400, "slug: ", {"name": "X", "slug": "p"}),
    "create project no name": Case("admin", "post", "/api/projects/", 400, "name: This field is required", {}),
    "create project lease 10^12": Case(
        "admin", "post", "/api/projects/", 400, "lease_minutes: Ensure", {"name": "X", "lease_minutes": 10**12}
    ),  # fmt: skip
    "create project by a manager": Case("mgr", "post", "/api/projects/", 403, "administrators", {"name": "X"}),
    # --- members ----------------------------------------------------------------------------------------------------
    "member unknown user": Case(
        "mgr",
        "post",
        "/api/projects/{slug}/members/",
        400,
        "No user named ghost",
        {"username": "ghost", "role": "labeler"},
    ),  # fmt: skip
    "member bad role": Case(
        "mgr", "post", "/api/projects/{slug}/members/", 400, "role: ", {"username": "lab", "role": "owner"}
    ),  # fmt: skip
    "member excluded maybe": Case(
        "mgr",
        "post",
        "/api/projects/{slug}/members/",
        400,
        "excluded: ",
        {"username": "lab", "role": "labeler", "excluded": "maybe"},
    ),  # fmt: skip
    # --- export parameters ------------------------------------------------------------------------------------------
    **{
        f"export {name}": Case("mgr", "get", "/api/projects/{slug}/export/", 400, message, query, "query")
        for name, query, message in [
            ("format bogus", {"format": "xml"}, "format: "),
            ("strategy bogus", {"strategy": "vote"}, "strategy: "),
            ("ties bogus", {"ties": "half"}, "ties: "),
            ("margin bogus", {"margin": "big"}, "margin: "),
            ("columns bogus", {"columns": "some"}, "columns: "),
            ("split bogus", {"split": "dev"}, "split: "),
            ("test_ratio 2", {"test_ratio": "2"}, "test_ratio: Ensure"),
            ("test_ratio nan", {"test_ratio": "nan"}, "test_ratio: A valid number is required"),
            ("test_ratio inf", {"test_ratio": "inf"}, "test_ratio: A valid number is required"),
            ("seed -1", {"seed": "-1"}, "seed: Ensure"),
            ("seed 40 digits", {"seed": BIG}, "seed: Ensure"),
            ("near_dup_threshold 0", {"near_dup_threshold": "0"}, "near_dup_threshold: Ensure"),
            ("min_labelers 0", {"min_labelers": "0"}, "min_labelers: Ensure"),
            ("min_labelers 40 digits", {"min_labelers": BIG}, "min_labelers: Ensure"),
            ("min_agreement 2", {"min_agreement": "2"}, "min_agreement: Ensure"),
            ("min_agreement nan", {"min_agreement": "nan"}, "min_agreement: A valid number is required"),
            ("guideline_version 40 digits", {"guideline_version": BIG}, "guideline_version: Ensure"),
            ("guideline_version a word", {"guideline_version": "two"}, "guideline_version: A valid integer"),
            ("guideline_version 0", {"guideline_version": "0"}, "guideline_version: Ensure"),
            ("round 40 digits", {"round": "1," + BIG}, "round: Ensure"),
            ("since yesterday", {"since": "yesterday"}, "since: Datetime has wrong format"),
            ("until garbage", {"until": "2024-13-45"}, "until: Datetime has wrong format"),
        ]
    },  # fmt: skip
    "export meta guideline_version 40 digits": Case(
        "mgr",
        "get",
        "/api/projects/{slug}/export/meta/",
        400,
        "guideline_version: Ensure",
        {"guideline_version": BIG},
        "query",
    ),  # fmt: skip
    "export by a labeler": Case("lab", "get", "/api/projects/{slug}/export/", 403, "managers", {}, "query"),
    # --- run configs ------------------------------------------------------------------------------------------------
    **{
        f"run {name}": Case("mgr", "post", "/api/runs/", 400, message, {"project": "p", **body})
        for name, body, message in [
            ("kind bogus", {"kind": "magic"}, "kind: "),
            ("project bad slug", {"project": "a b"}, "project: "),
            ("config a string", {"config": "fast"}, "config: Expected an object"),
            ("config a list", {"config": [1]}, "config: Expected an object"),
            ("config unknown field", {"config": {"epochs": 2}}, "config: Unknown field: epochs."),
            ("config output_dir", {"config": {"output_dir": "/etc"}}, "config: Unknown field: output_dir."),
            ("config 40-digit int", {"config": {"max_length": int(BIG)}}, "config.max_length: Ensure"),
            ("config nan float", {"config": {"learning_rate": "nan"}}, "config.learning_rate: A valid number"),
            ("config word for int", {"config": {"max_length": "long"}}, "config.max_length: A valid integer"),
            ("config long string", {"config": {"base_model": "x" * 1001}}, "config.base_model: Ensure"),
            ("export strategy vote", {"export": {"strategy": "vote"}}, "export.strategy: "),
            ("export unknown key", {"export": {"shuffle": True}}, "export: Unknown field: shuffle."),
            ("export test_ratio 5", {"export": {"test_ratio": 5}}, "export.test_ratio: Ensure"),
            ("export seed 40 digits", {"export": {"seed": int(BIG)}}, "export.seed: Ensure"),
            ("name too long", {"name": "x" * 201}, "name: Ensure"),
            ("policy too long", {"kind": "ppo", "policy": "x" * 501}, "policy: Ensure"),
            ("reward_run a word", {"kind": "ppo", "reward_run": "best"}, "reward_run: A valid integer"),
            ("ppo without reward run", {"kind": "ppo"}, "needs a finished reward-model run"),
        ]
    },  # fmt: skip
    "run by a labeler": Case("lab", "post", "/api/runs/", 403, "managers", {"project": "p"}),
    # --- generation and scoring -------------------------------------------------------------------------------------
    **{
        f"generate {name}": Case("mgr", "post", "/api/runs/{run}/generate/", 400, message, body)
        for name, body, message in [
            ("unknown field", {"k": 2, "bogus": 1}, "Unknown field: bogus."),
            ("k 0", {"k": 0}, "k: Ensure"),
            ("k 11", {"k": 11}, "k: Ensure"),
            ("k a word", {"k": "four"}, "k: A valid integer"),
            ("temperature nan", {"temperature": "nan"}, "temperature: A valid number is required"),
            ("temperature 6", {"temperature": 6}, "temperature: Ensure"),
            ("max_new_tokens 0", {"max_new_tokens": 0}, "max_new_tokens: Ensure"),
            ("seed 40 digits", {"seed": int(BIG)}, "seed: Ensure"),
            ("scope bogus", {"scope": "everything"}, "scope: "),
            ("limit 0", {"limit": 0}, "limit: Ensure"),
            ("project bad slug", {"project": "a b"}, "project: "),
        ]
    },  # fmt: skip
    "score project bad slug": Case("mgr", "post", "/api/runs/{run}/score/", 400, "project: ", {"project": "a b"}),
}


@pytest.fixture
def world(db, settings, tmp_path):
    settings.RLHF_RUNS_DIR = str(tmp_path / "runs")
    project = ProjectFactory(slug="p")
    for _ in range(3):
        PromptFactory(project=project)
    other = ProjectFactory(slug="other")
    PromptFactory(project=other)
    lab, mgr = labeler(project, username="lab"), manager(project, username="mgr")
    first = assignment_next(project=project, labeler=lab)
    ranking, _ = ranking_submit(
        labeler=lab, assignment_id=first.id, ranks={rid: i + 1 for i, rid in enumerate(first.shown_order)}
    )
    task = assignment_next(project=project, labeler=lab)
    run = TrainingRun.objects.create(project=project, kind=TrainingRun.Kind.PPO, created_by=mgr, status="succeeded")
    users = {"lab": lab, "mgr": mgr, "admin": AdminFactory(username="root")}
    return {"users": users, "task": task, "ranking": ranking, "run": run, "slug": project.slug}


def _ranks(shown: list[int], body: Any, foreign_id: int) -> dict:
    """Submit bodies named by a keyword: a valid judgment of `shown` altered in one way, or one bad rank value."""
    good = [{"response_id": rid, "rank": i + 1} for i, rid in enumerate(shown)]
    if body == "valid":
        return {"ranks": good}
    if body == "dense":
        return {"ranks": [{**item, "rank": 1 if i == 0 else 3} for i, item in enumerate(good)]}
    if body == "nullrank":
        body = None
    if body == "missing":
        return {"ranks": good[:-1]}
    if body == "foreign":
        return {"ranks": [*good[:-1], {"response_id": foreign_id, "rank": len(good)}]}
    if body == "dup":
        return {"ranks": [*good, good[0]]}
    if body == "bigid":
        return {"ranks": [*good[:-1], {"response_id": 10**30, "rank": len(good)}]}
    if body == "eleven":
        return {"ranks": [{"response_id": 1000 + i, "rank": 1} for i in range(11)]}
    if isinstance(body, dict):
        return {"ranks": good, **body}
    return {"ranks": [{**good[0], "rank": body}, *good[1:]]}  # one bad rank value


def _snapshot() -> tuple:
    return (
        Prompt.objects.count(),
        Response.objects.count(),
        Ranking.objects.count(),
        TrainingRun.objects.count(),
        list(Project.objects.order_by("pk").values()),
        list(Guideline.objects.order_by("pk").values_list("pk", "text")),
        list(Membership.objects.order_by("pk").values_list("pk", "role", "excluded")),
    )


def _send(world, case: Case):
    client = api_client(world["users"][case.who])
    client.raise_request_exception = False
    path = case.path.format(slug=world["slug"], task=world["task"].id, ranking=world["ranking"].id, run=world["run"].id)
    send = getattr(client, case.method)
    if case.kind == "file":
        upload = SimpleUploadedFile(case.extra["name"], case.body)
        return send(path, {"file": upload, "kind": case.extra.get("kind_choice", "auto")}, format="multipart")
    if case.kind == "form":
        return send(path, case.body, format="multipart")
    if case.kind == "raw":
        return send(path, case.body, content_type="application/json")
    if case.kind == "query":
        return send(path, case.body)
    body = case.body
    if "/tasks/" in case.path or "/revise/" in case.path:
        shown = world["task"].shown_order if "/tasks/" in case.path else world["ranking"].shown_order
        foreign = Response.objects.filter(prompt__project__slug="other").first().id
        body = _ranks(list(shown), body, foreign) if body is not None else None
    return send(path, body, format="json")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_with_a_message_and_nothing_changes(world, case):
    before = _snapshot()
    response = _send(world, case)
    assert response.status_code == case.status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] and isinstance(body["errors"], list)
    assert any(case.message in error for error in body["errors"]), body["errors"]
    assert _snapshot() == before


def test_the_corpus_has_at_least_100_cases():
    assert len(CASES) + len(ADMIN_CASES) >= 100


# --- admin forms: the form comes back (200) with the error, nothing saved ----------------------------------------

ADMIN_CASES = {
    "flag_options not JSON": ({"flag_options": "[{"}, "Enter a valid JSON"),
    "flag_options a string": ({"flag_options": '"unsafe"'}, "Flag options must be a list"),
    "flag_options numbers": ({"flag_options": "[1, 2]"}, "Flag option 1: Flag options must be"),
    "flag_options without label": ({"flag_options": '[{"key": "a"}]'}, "Flag option 1: Flag options must be"),
    "flag key empty": ({"flag_options": '[{"key": "", "label": "x"}]'}, "Flag option 1: the key must be"),
    "flag key a number": ({"flag_options": '[{"key": 5, "label": "x"}]'}, "Flag option 1: the key must be"),
    "flag keys repeated": (
        {"flag_options": '[{"key": "a", "label": "x"}, {"key": "a", "label": "y"}]'},
        "appears more than once",
    ),  # fmt: skip
    "flag label empty": ({"flag_options": '[{"key": "a", "label": " "}]'}, "the label must be"),
    "lease 10^12": ({"lease_minutes": 10**12}, "Ensure this value is less than or equal to"),
    "lease 0": ({"lease_minutes": 0}, "Ensure this value is greater than or equal to"),
    "overlap 0": ({"overlap": 0}, "Ensure this value is greater than or equal to"),
    "overlap 10^12": ({"overlap": 10**12}, "Ensure this value is less than or equal to"),
    "gold_rate 2": ({"gold_rate": 2}, "gold_rate"),
    "responses_per_task 1": ({"responses_per_task": 1}, "responses_per_task"),
}


@pytest.mark.parametrize("overrides, message", ADMIN_CASES.values(), ids=ADMIN_CASES.keys())
def test_admin_project_form_refuses_bad_settings(world, client, overrides, message):
    from tests.annotation.api.test_bad_input_cases import _admin_project_form

    project = Project.objects.get(slug="p")
    client.force_login(world["users"]["admin"])
    before = _snapshot()
    response = client.post(f"/admin/annotation/project/{project.pk}/change/", _admin_project_form(project, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert _snapshot() == before
