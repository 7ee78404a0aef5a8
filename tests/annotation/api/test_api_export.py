"""GET /api/projects/{slug}/export/: a streamed preference dataset for managers and admins; GET .../export/meta/: its
export_meta.json."""

import hashlib
import io

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.http import StreamingHttpResponse

from annotation import exports
from annotation.services.exports import preference_export_create
from tests.annotation.api._helpers import SECRET_MODELS, api_client
from tests.factories import PromptFactory, labeler, ranking_make


@pytest.fixture
def ranked(world):
    """Six prompts of alpha ranked by two labelers (one of them excluded), plus a gold prompt they also ranked."""
    second = labeler(world.project, username="liv")
    excluded = labeler(world.project, username="ex")
    world.project.memberships.filter(user=excluded).update(excluded=True)
    prompts = world.prompts + [PromptFactory(project=world.project, category="extra") for _ in range(3)]
    for prompt in prompts:
        ranking_make(prompt, world.labeler, [1, 2, 3, 4])
        ranking_make(prompt, second, [2, 1, 3, 3])
        ranking_make(prompt, excluded, [4, 3, 2, 1])
    world.gold = PromptFactory(project=world.project, is_gold=True)
    ranking_make(world.gold, world.labeler, [1, 2, 3, 4])
    world.excluded = excluded
    return world


def get(user, query: str = ""):
    return api_client(user).get(f"/api/projects/alpha/export/{query}")


def lines(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    return [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_manager_streams_train_and_test_which_partition_the_prompts(ranked):
    train = get(ranked.manager, "?test_ratio=0.5")
    test = get(ranked.manager, "?test_ratio=0.5&split=test")

    assert train.status_code == test.status_code == 200
    assert train["Content-Disposition"] == 'attachment; filename="alpha-all-train.jsonl"'
    train_rows, test_rows = lines(train), lines(test)
    train_prompts, test_prompts = {r["prompt_id"] for r in train_rows}, {r["prompt_id"] for r in test_rows}
    assert not train_prompts & test_prompts and len(train_prompts | test_prompts) == 6
    assert len(train_rows) + len(test_rows) == 6 * (6 + 5)
    assert ranked.gold.id not in train_prompts | test_prompts


def test_stream_matches_the_command_line_export(tmp_path, ranked):
    options = exports.ExportOptions(strategy="majority", margin="rank-diff", test_ratio=0.5, seed=3)
    preference_export_create(project=ranked.project, out=tmp_path, options=options)

    response = get(ranked.admin, "?strategy=majority&margin=rank-diff&test_ratio=0.5&seed=3")

    assert b"".join(response.streaming_content) == (tmp_path / "train.jsonl").read_bytes()


def test_excluded_labelers_never_appear_and_labeler_facing_files_name_no_model(ranked):
    rows = lines(get(ranked.manager, "?test_ratio=0"))

    excluded_rankings = set(ranked.excluded.rankings.values_list("id", flat=True))
    assert rows and not excluded_rankings & {row["ranking_id"] for row in rows}
    assert not any(name in orjson.dumps(rows).decode() for name in SECRET_MODELS)


def test_raw_format_streams_every_ranking_with_model_names_for_managers(ranked):
    rows = lines(get(ranked.manager, "?format=raw&test_ratio=0"))

    assert len(rows) == 12 and {row["labeler"] for row in rows} == {"lea", "liv"}
    first = {p.id for p in ranked.prompts}
    assert {r["model"] for row in rows if row["prompt_id"] in first for r in row["responses"]} == set(SECRET_MODELS)


def test_parquet_format_streams_a_readable_parquet_file(ranked):
    response = get(ranked.manager, "?format=parquet&test_ratio=0&columns=trl")

    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert table.column_names == ["prompt", "chosen", "rejected"] and table.num_rows == 6 * 11


def test_filters_in_the_query_string(ranked):
    rows = lines(get(ranked.manager, "?test_ratio=0&category=extra&strategy=consensus&min_labelers=2"))

    assert {row["category"] for row in rows} == {"extra"} and {row["n_labelers"] for row in rows} == {2}


@pytest.mark.parametrize(
    ("query", "message"),
    [("?format=hf", "format"), ("?strategy=best", "strategy"), ("?test_ratio=2", "test_ratio"),
     ("?guideline_version=x", "guideline_version"), ("?split=dev", "split")],
)  # fmt: skip
def test_bad_parameters_are_a_400_with_errors(ranked, query, message):
    response = get(ranked.manager, query)

    assert response.status_code == 400
    assert any(message in error for error in response.json()["errors"]), response.json()


@pytest.mark.parametrize(("role", "status"), [("labeler", 403), ("outsider", 404), ("newcomer", 404)])
def test_only_managers_and_admins_may_export(ranked, role, status):
    response = get(getattr(ranked, role))

    assert response.status_code == status and response.json()["errors"]


def test_anonymous_gets_401(ranked):
    assert get(None).status_code == 401


# --- export_meta.json over the API ----------------------------------------------------------------------------------


def get_meta(user, query: str = ""):
    return api_client(user).get(f"/api/projects/alpha/export/meta/{query}")


def cli_meta(out, *args) -> dict:
    call_command("export_preferences", "--project", "alpha", "--out", str(out), "--no-progress", *args,
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    return orjson.loads((out / exports.META_FILE).read_bytes())


def without_time(meta: dict) -> dict:
    return {key: value for key, value in meta.items() if key != "created_at"}


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("?strategy=majority&margin=rank-diff&test_ratio=0.5&seed=3",
         ["--strategy", "majority", "--margin", "rank-diff", "--test-ratio", "0.5", "--seed", "3"]),
        ("?format=parquet&columns=trl&ties=keep&test_ratio=0.3&category=extra&min_labelers=2",
         ["--format", "parquet", "--columns", "trl", "--ties", "keep", "--test-ratio", "0.3", "--category", "extra",
          "--min-labelers", "2"]),
        ("?format=raw&exclude_flags=none&test_ratio=0", ["--format", "raw", "--exclude-flags", "none",
                                                        "--test-ratio", "0"]),
    ],
    ids=["jsonl", "parquet", "raw"],
)  # fmt: skip
def test_meta_is_what_the_command_writes_for_the_same_options(tmp_path, ranked, query, args):
    written = cli_meta(tmp_path, *args)

    response = get_meta(ranked.manager, query)

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    meta = response.json()
    assert without_time(meta) == without_time(written)
    assert meta["files"] == {name: exports.file_sha256(tmp_path / name) for name in written["files"]}
    assert meta["left_out"]["gold_prompts"] == 1 and meta["left_out"]["excluded_labelers"] == ["ex"]
    assert [labeler["username"] for labeler in meta["labelers"]] == ["lea", "liv"]


def test_meta_counts_the_split_the_stream_gives_and_hashes_its_bytes(ranked):
    query = "?test_ratio=0.5&strategy=consensus"

    meta = get_meta(ranked.admin, query + "&split=test").json()  # the stream's `split` is ignored: both are counted
    train, test = get(ranked.admin, query + "&split=train"), get(ranked.admin, query + "&split=test")

    train_bytes, test_bytes = b"".join(train.streaming_content), b"".join(test.streaming_content)
    splits = meta["counts"]["splits"]
    assert splits["train"]["pairs"] == len(train_bytes.splitlines()) and splits["test"]["pairs"] == len(
        test_bytes.splitlines()
    )
    assert splits["train"]["prompts"] + splits["test"]["prompts"] == meta["counts"]["prompts"] == 6
    assert meta["options"]["test_ratio"] == 0.5 and meta["strategy"] == "consensus"
    assert meta["files"] == {
        "train.jsonl": hashlib.sha256(train_bytes).hexdigest(),
        "test.jsonl": hashlib.sha256(test_bytes).hexdigest(),
    }


@pytest.mark.parametrize(("query", "message"), [("?format=hf", "format"), ("?min_labelers=0", "min_labelers")])
def test_meta_bad_parameters_are_a_400(ranked, query, message):
    response = get_meta(ranked.manager, query)

    assert response.status_code == 400
    assert any(message in error for error in response.json()["errors"]), response.json()


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("labeler", 403), ("outsider", 404), ("newcomer", 404), ("admin", 200)]
)
def test_only_managers_and_admins_get_the_meta(ranked, role, status):
    response = get_meta(None if role == "anonymous" else getattr(ranked, role))

    assert response.status_code == status
    assert ("counts" in response.json()) == (status == 200)
