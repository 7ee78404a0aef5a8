"""Many labelers at once against a real multi-process server: nothing lost, nothing stored twice, overlap respected.

The server is gunicorn (3 processes x 4 threads) over SQLite in WAL mode; the clients are plain HTTP over the
loopback with API tokens; the checks read the server's database file afterwards.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import requests

pytestmark = pytest.mark.server

LABELERS = 50
PROMPTS = 30
RESPONSES = 4
OVERLAP = 3
DEADLINE_S = 45
MAX_REQUESTS_PER_LABELER = 150
SKIP_RATE = 0.1
DOUBLE_SUBMIT_RATE = 0.2


class Api:
    """One labeler's HTTP client: a kept-alive session with its token."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def post(self, path: str, payload: dict | None = None) -> requests.Response:
        return self.session.post(f"{self.base_url}{path}", json=payload or {}, timeout=30)

    def next_task(self, slug: str) -> requests.Response:
        return self.post(f"/api/projects/{slug}/tasks/next/")

    def submit(self, assignment_id: int, ranks: dict[int, int]) -> requests.Response:
        payload = {"ranks": [{"response_id": rid, "rank": rank} for rid, rank in ranks.items()], "time_spent_s": 1.5}
        return self.post(f"/api/tasks/{assignment_id}/submit/", payload)

    def skip(self, assignment_id: int) -> requests.Response:
        return self.post(f"/api/tasks/{assignment_id}/skip/")


def random_ranks(response_ids: list[int], rng: random.Random) -> dict[int, int]:
    """Dense ranks, ties included now and then: e.g. 1, 2, 2, 3."""
    raw = [rng.randint(1, len(response_ids)) for _ in response_ids]
    dense = {value: rank for rank, value in enumerate(sorted(set(raw)), start=1)}
    return {rid: dense[value] for rid, value in zip(response_ids, raw, strict=True)}


@dataclass
class LoadRecord:
    """What the clients saw, shared by all threads (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    acknowledged: dict[int, dict] = field(default_factory=dict)  # ranking_id -> what was submitted
    double_submits: list[tuple[int, int, int, int]] = field(default_factory=list)  # (status, id, status, id)
    errors: list[str] = field(default_factory=list)
    target: int = PROMPTS * OVERLAP

    def all_done(self) -> bool:
        with self.lock:
            return len(self.acknowledged) >= self.target

    def saw(self, response: requests.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1

    def acknowledge(self, response: requests.Response, labeler_id: int, prompt_id: int, ranks: dict) -> None:
        body = response.json()
        with self.lock:
            previous = self.acknowledged.setdefault(
                body["ranking_id"], {"labeler_id": labeler_id, "prompt_id": prompt_id, "ranks": ranks}
            )
            if previous != {"labeler_id": labeler_id, "prompt_id": prompt_id, "ranks": ranks}:
                self.errors.append(f"ranking {body['ranking_id']} acknowledged for two different submissions")


def submit_twice_at_once(api: Api, assignment_id: int, ranks: dict) -> list[requests.Response]:
    """The same request sent twice concurrently (a double click on a slow connection)."""
    twin = Api(api.base_url, api.session.headers["Authorization"].split()[1])
    barrier, responses = threading.Barrier(2), [None, None]

    def send(i: int, client: Api) -> None:
        barrier.wait(timeout=10)
        responses[i] = client.submit(assignment_id, ranks)

    threads = [threading.Thread(target=send, args=(i, c)) for i, c in enumerate((api, twin))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=35)
    return responses


def label_until_done(api: Api, slug: str, labeler_id: int, record: LoadRecord, seed: int, deadline: float) -> None:
    """next -> submit (sometimes twice at once, sometimes a skip) until every prompt has its overlap of rankings.

    A 204 only means "nothing for you right now": others may still skip what they hold, so wait and ask again.
    """
    try:
        _label(api, slug, labeler_id, record, random.Random(seed), deadline)
    except Exception as exc:  # a thread's exception would otherwise only be printed
        record.errors.append(f"labeler {labeler_id}: {exc!r}")


def _label(api: Api, slug: str, labeler_id: int, record: LoadRecord, rng: random.Random, deadline: float) -> None:
    idle = 0  # 204s in a row: back off so that waiting labelers do not crowd out the working ones
    for _ in range(MAX_REQUESTS_PER_LABELER):
        if time.monotonic() > deadline:
            record.errors.append(f"labeler {labeler_id} still working at the deadline")
            return
        task = api.next_task(slug)
        record.saw(task)
        if task.status_code == 204:
            if record.all_done():
                return
            idle += 1
            time.sleep(min(2.0, 0.1 * 2**idle) * rng.uniform(0.5, 1.0))
        elif task.status_code == 200:
            idle = 0
            work_on(api, task.json(), labeler_id, record, rng)
        else:
            record.errors.append(f"next: {task.status_code} {task.text[:200]}")
            return
    record.errors.append(f"labeler {labeler_id} ran out of its request budget")


def work_on(api: Api, task: dict, labeler_id: int, record: LoadRecord, rng: random.Random) -> None:
    assignment_id, prompt_id = task["assignment_id"], task["prompt"]["id"]
    if rng.random() < SKIP_RATE:
        response = api.skip(assignment_id)
        record.saw(response)
        return
    ranks = random_ranks([r["id"] for r in task["responses"]], rng)
    if rng.random() < DOUBLE_SUBMIT_RATE:
        first, second = submit_twice_at_once(api, assignment_id, ranks)
        for response in (first, second):
            record.saw(response)
            if response.status_code in (200, 201):
                record.acknowledge(response, labeler_id, prompt_id, ranks)
        with record.lock:
            record.double_submits.append(
                (first.status_code, first.json().get("ranking_id"), second.status_code, second.json().get("ranking_id"))
            )
        return
    response = api.submit(assignment_id, ranks)
    record.saw(response)
    if response.status_code == 201:
        record.acknowledge(response, labeler_id, prompt_id, ranks)
    else:
        record.errors.append(f"submit: {response.status_code} {response.text[:200]}")


def run_labelers(server, seeded: dict) -> LoadRecord:
    record = LoadRecord()
    deadline = time.monotonic() + DEADLINE_S
    threads = [
        threading.Thread(
            target=label_until_done,
            args=(Api(server.base_url, who["token"]), seeded["slug"], who["id"], record, i, deadline),
        )
        for i, who in enumerate(seeded["labelers"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_S + 30)
    assert not any(thread.is_alive() for thread in threads), "labeler threads did not finish in time"
    return record


def stored_rankings(server, slug: str) -> dict[int, dict]:
    with server.db() as db:
        rows = db.execute(
            "SELECT r.id, r.labeler_id, r.prompt_id, r.is_current, e.response_id, e.rank"
            " FROM annotation_ranking r JOIN annotation_project p ON p.id = r.project_id"
            " JOIN annotation_rankingentry e ON e.ranking_id = r.id WHERE p.slug = ?",
            (slug,),
        ).fetchall()
    rankings: dict[int, dict] = {}
    for ranking_id, labeler_id, prompt_id, is_current, response_id, rank in rows:
        stored = rankings.setdefault(
            ranking_id, {"labeler_id": labeler_id, "prompt_id": prompt_id, "is_current": is_current, "ranks": {}}
        )
        stored["ranks"][response_id] = rank
    return rankings


def test_fifty_labelers_at_once_store_every_acknowledged_ranking_once_and_fill_prompts_to_overlap(platform_server):
    seeded = platform_server.seed(
        "load", prompts=PROMPTS, responses=RESPONSES, overlap=OVERLAP, labelers=LABELERS, lease_minutes=30
    )
    started = time.monotonic()

    record = run_labelers(platform_server, seeded)

    assert time.monotonic() - started < DEADLINE_S
    assert record.errors == []
    assert not [status for status in record.statuses if status >= 500], record.statuses
    assert set(record.statuses) <= {200, 201, 204}, record.statuses
    # Every double submit was answered for the one stored ranking: one created it, the other was told it exists.
    assert record.double_submits, "the run should have sent some concurrent double submits"
    for first_status, first_id, second_status, second_id in record.double_submits:
        assert sorted([first_status, second_status]) == [200, 201]
        assert first_id == second_id

    stored = stored_rankings(platform_server, seeded["slug"])
    # Each acknowledged ranking exists, once, with exactly the ranks that were submitted; nothing else was stored.
    assert set(stored) == set(record.acknowledged)
    for ranking_id, sent in record.acknowledged.items():
        got = stored[ranking_id]
        assert (got["labeler_id"], got["prompt_id"], got["ranks"]) == (
            sent["labeler_id"],
            sent["prompt_id"],
            sent["ranks"],
        )
        assert got["is_current"] == 1
    per_pair = Counter((r["prompt_id"], r["labeler_id"]) for r in stored.values())
    assert max(per_pair.values()) == 1, "a labeler ranked a prompt twice"
    per_prompt = Counter(r["prompt_id"] for r in stored.values())
    assert {prompt_id: per_prompt[prompt_id] for prompt_id in seeded["prompt_ids"]} == dict.fromkeys(
        seeded["prompt_ids"], OVERLAP
    )
    with platform_server.db() as db:
        counters = db.execute(
            "SELECT p.ranking_count, p.is_complete FROM annotation_prompt p"
            " JOIN annotation_project j ON j.id = p.project_id WHERE j.slug = ?",
            (seeded["slug"],),
        ).fetchall()
    assert set(counters) == {(OVERLAP, 1)}


def expire_lease(server, assignment_id: int) -> None:
    """The holder walked away: their lease ran out five minutes ago."""
    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with server.db() as db:
        assert db.execute(
            "UPDATE annotation_assignment SET expires_at = ? WHERE id = ?", (past, assignment_id)
        ).rowcount


def rankers_of(server, slug: str) -> list[int]:
    return sorted(r["labeler_id"] for r in stored_rankings(server, slug).values())


def test_expired_lease_returns_the_prompt_to_the_pool_and_a_late_submit_is_refused_once_it_is_full(platform_server):
    seeded = platform_server.seed("expiry", prompts=1, responses=3, overlap=2, labelers=3)
    (holder, holder_id), (second, second_id), (third, third_id) = (
        (Api(platform_server.base_url, who["token"]), who["id"]) for who in seeded["labelers"]
    )
    held, other = holder.next_task("expiry").json(), second.next_task("expiry").json()
    assert third.next_task("expiry").status_code == 204  # two live leases fill the overlap of 2

    expire_lease(platform_server, held["assignment_id"])
    returned = third.next_task("expiry")
    assert returned.status_code == 200 and returned.json()["prompt"]["id"] == held["prompt"]["id"]
    returned = returned.json()
    for api, task in ((second, other), (third, returned)):
        assert api.submit(task["assignment_id"], {r["id"]: 1 for r in task["responses"]}).status_code == 201

    late = holder.submit(held["assignment_id"], {r["id"]: 1 for r in held["responses"]})

    assert late.status_code == 400
    assert "expired" in " ".join(late.json()["errors"])
    assert holder.next_task("expiry").status_code == 204
    assert rankers_of(platform_server, "expiry") == sorted([second_id, third_id])
    assert holder_id not in rankers_of(platform_server, "expiry")


def test_late_submit_after_lease_expiry_is_accepted_while_the_prompt_still_has_a_free_slot(platform_server):
    seeded = platform_server.seed("late-ok", prompts=1, responses=2, overlap=2, labelers=2)
    (holder, holder_id), (other, other_id) = (
        (Api(platform_server.base_url, who["token"]), who["id"]) for who in seeded["labelers"]
    )
    held = holder.next_task("late-ok").json()
    expire_lease(platform_server, held["assignment_id"])
    taken = other.next_task("late-ok").json()
    assert taken["prompt"]["id"] == held["prompt"]["id"]

    late = holder.submit(held["assignment_id"], {r["id"]: rank for rank, r in enumerate(held["responses"], 1)})
    on_time = other.submit(taken["assignment_id"], {r["id"]: 1 for r in taken["responses"]})

    assert (late.status_code, on_time.status_code) == (201, 201)
    assert rankers_of(platform_server, "late-ok") == sorted([holder_id, other_id])
