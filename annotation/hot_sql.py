"""Hand-written reads for the labeling hot path (next -> submit, many labelers at once).

Why by hand: on the labeling load benchmark (bench/labeling_load.py, docs/benchmarks.md) the server is CPU-bound on
two cores, and most of that CPU was the ORM compiling SQL, not SQLite running it: a `select_related(...).first()`
costs about 1 ms per call, a `.get(pk=...)` 0.5 ms, the same row through `Model.objects.raw()` 0.25 ms and a bare
cursor 0.04 ms (measured on the 2-core CI machine). Under SQLite's single writer, CPU spent inside a write
transaction also stretches the time every other labeler waits. No library precompiles Django querysets, so the few
reads every next/submit runs are written here once, portable to SQLite and PostgreSQL, and their rows become model
instances through `fetch_models` (the ORM's own converters, worked out once per query shape). Each function has a
test that it returns what the ORM query it replaces returns (tests/annotation/test_hot_sql.py). The writes of a
next/submit (the lease; the ranking, its entries, the assignment's status and the prompt's count) go through `insert`
and `update_by_pk`, for the same reason (sampled with py-spy, the ORM's compilers were ~20% of a cycle's CPU).

Only the models' own table and column names are interpolated; every value is a parameter.
"""

from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


# (model, the result's column names, database alias) -> how to build instances from rows: which column feeds each
# concrete field and the converters the ORM would apply. `Model.objects.raw()` works this out again for every query
# (a quarter of a millisecond each on this path); the answer never changes for a given SELECT, so keep it.
_plans: dict[tuple, tuple] = {}


def fetch_models(model: type[M], sql: str, params: list, extra: tuple[str, ...] = ()) -> list[M]:
    """Instances of `model` from a `SELECT *`-like query (every concrete column present), with the `extra` columns
    set as attributes (like annotations). The same objects `model.objects.raw(sql, params)` gives."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = tuple(col[0] for col in cursor.description)
        rows = cursor.fetchall()
    key = (model, names, connection.alias)
    plan = _plans.get(key)
    if plan is None:
        position = {name: i for i, name in enumerate(names)}
        fields = model._meta.concrete_fields
        columns = [field.get_col(model._meta.db_table) for field in fields]
        plan = _plans[key] = (
            [(position[f.column], c, _converters(c)) for f, c in zip(fields, columns, strict=True)],
            [(name, position[name]) for name in extra],
        )
    feeds, extras = plan
    alias = connection.alias
    objects = []
    for row in rows:
        values = []
        for i, column, converters in feeds:
            value = row[i]
            for converter in converters:
                value = converter(value, column, connection)
            values.append(value)
        obj = model.from_db(alias, None, values)
        for name, i in extras:
            setattr(obj, name, row[i])
        objects.append(obj)
    return objects


def row_by_pk(model: type[M], pk: int, *, lock: bool = False) -> M | None:
    """`model.objects.filter(pk=pk).first()` through the default manager (None when missing); lock=True is
    `select_for_update()` (a no-op on SQLite, where the IMMEDIATE transaction already holds the write lock)."""
    if not _fits(pk):
        return None
    sql = f"SELECT * FROM {model._meta.db_table} WHERE {model._meta.pk.column} = %s{_visible(model)}"  # noqa: S608
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    found = fetch_models(model, sql, [pk])
    return found[0] if found else None


def values_by_pk(model: type[Model], pk: int, fields: tuple[str, ...], *, lock: bool = False) -> tuple | None:
    """`model.objects.filter(pk=pk).values_list(*fields).first()` (default manager) for plain (non-relation,
    non-JSON) fields, with the database's values converted as the ORM would (e.g. SQLite's datetimes and booleans)."""
    if not _fits(pk):
        return None
    opts = model._meta
    columns = [opts.get_field(name).get_col(opts.db_table) for name in fields]
    selected = ", ".join(c.target.column for c in columns)
    sql = f"SELECT {selected} FROM {opts.db_table} WHERE {opts.pk.column} = %s{_visible(model)}"  # noqa: S608
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    return None if row is None else tuple(_convert(f, v) for f, v in zip(columns, row, strict=True))


def _visible(model: type[Model]) -> str:
    """The condition the model's default manager adds (Prompt and Ranking: not staged, see VisibleManager), as SQL to
    append to a WHERE clause; "" for other models."""
    from annotation.models import VisibleManager

    return " AND staged = FALSE" if isinstance(model._default_manager, VisibleManager) else ""


def _fits(pk: int) -> bool:
    """Whether the id fits a 64-bit column (a URL can carry any number: the ORM finds nothing for it, so do we)."""
    return -(2**63) <= int(pk) < 2**63


def _converters(column: Any) -> list:
    """What the ORM applies to a column's database value (the compiler's get_converters, for one column)."""
    return connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def _convert(column: Any, value: Any) -> Any:
    for converter in _converters(column):
        value = converter(value, column, connection)
    return value


# (model, rows, database alias) -> the INSERT statement and the fields it writes (see `insert`); the same for
# `update_by_pk`, keyed by the fields it sets.
_inserts: dict[tuple, tuple] = {}
_updates: dict[tuple, tuple] = {}


def insert(objs: list[M]) -> list[M]:
    """Write new instances of one model as `Model.objects.bulk_create(objs)` does where the database returns the new
    ids (SQLite 3.35+, PostgreSQL): each field's `pre_save` (e.g. `auto_now_add`) and `get_db_prep_save` (JSON,
    datetimes) as the ORM applies them, one INSERT ... RETURNING, the ids set on the objects. No signals are sent
    (bulk_create sends none either; the platform's models have no receivers). Elsewhere: bulk_create itself."""
    if not objs:
        return objs
    model = type(objs[0])
    if not connection.features.can_return_rows_from_bulk_insert or any(obj.pk is not None for obj in objs):
        return model._default_manager.bulk_create(objs)  # (ids given by the caller: the ORM writes them)
    key = (model, len(objs), connection.alias)
    prepared = _inserts.get(key)
    if prepared is None:
        opts = model._meta
        fields = [f for f in opts.local_concrete_fields if not f.generated and f is not opts.auto_field]
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
            f" VALUES {', '.join([row] * len(objs))} RETURNING {quote(opts.pk.column)}"
        )
        prepared = _inserts[key] = (sql, fields)
    sql, fields = prepared
    for obj in objs:  # as bulk_create: an unsaved related object is an error, a saved one gives its id
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    values = [field.pre_save(obj, True) for obj in objs for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):  # an expression: the ORM compiles it
        return model._default_manager.bulk_create(objs)
    params = [f.get_db_prep_save(value, connection) for value, f in zip(values, fields * len(objs), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    return objs


def update_by_pk(model: type[Model], pk: int, values: dict[str, Any], *, add: dict[str, int] | None = None) -> int:
    """`model.objects.filter(pk=pk).update(**values, **{name: F(name) + n for name, n in add.items()})` through the
    default manager, for plain (non-relation) fields: each value prepared by its field as the ORM does
    (`get_db_prep_save`). Returns the number of rows updated."""
    add = add or {}
    key = (model, tuple(values), tuple(add), connection.alias)
    prepared = _updates.get(key)
    if prepared is None:
        opts, quote = model._meta, connection.ops.quote_name
        fields = [opts.get_field(name) for name in values]
        sets = [f"{quote(f.column)} = %s" for f in fields]
        sets += [f"{quote(c)} = {quote(c)} + %s" for c in (opts.get_field(name).column for name in add)]
        sql = (
            f"UPDATE {quote(opts.db_table)} SET {', '.join(sets)}"  # noqa: S608
            f" WHERE {quote(opts.pk.column)} = %s{_visible(model)}"
        )
        prepared = _updates[key] = (sql, fields)
    sql, fields = prepared
    params = [f.get_db_prep_save(value, connection) for f, value in zip(fields, values.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *add.values(), pk])
        return cursor.rowcount


def scalar(sql: str, params: list) -> Any:
    """The first column of the first row (None when there is no row)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def project_with_role(*, slug: str, user_id: int) -> tuple[Any, str | None]:
    """(project, the user's membership role) for a project slug, (None, None) when the user is not a member:
    `Membership.objects.select_related("project").filter(user=..., project__slug=...).first()` in one raw read."""
    from annotation.models import Membership, Project

    sql = (
        f"SELECT p.*, m.role AS member_role FROM {Project._meta.db_table} p"  # noqa: S608
        f" JOIN {Membership._meta.db_table} m ON m.project_id = p.id WHERE p.slug = %s AND m.user_id = %s"
        " ORDER BY m.id LIMIT 1"
    )
    project = next(iter(fetch_models(Project, sql, [slug, user_id], extra=("member_role",))), None)
    return (project, project.member_role) if project is not None else (None, None)


def project_with_membership(*, project_id: int, user_id: int) -> tuple[Any, bool]:
    """(project, whether the user is a member of it) in one read; (None, False) when there is no such project."""
    from annotation.models import Membership, Project

    sql = (
        f"SELECT p.*, EXISTS (SELECT 1 FROM {Membership._meta.db_table} m"  # noqa: S608
        f" WHERE m.project_id = p.id AND m.user_id = %s) AS is_member FROM {Project._meta.db_table} p WHERE p.id = %s"
    )
    project = next(iter(fetch_models(Project, sql, [user_id, project_id], extra=("is_member",))), None)
    return (project, bool(project.is_member)) if project is not None else (None, False)


def labeler_counts(*, project_id: int, labeler_id: int, now: Any) -> tuple[int, int]:
    """(submitted, active with a running lease) assignments of a labeler in a project: the same as
    `aggregate(done=Count("id", filter=Q(status="submitted")),
    assigned=Count("id", filter=Q(status="active", expires_at__gt=now)))`."""
    from annotation.models import Assignment

    sql = (
        "SELECT COALESCE(SUM(CASE WHEN status = %s THEN 1 ELSE 0 END), 0),"  # noqa: S608
        " COALESCE(SUM(CASE WHEN status = %s AND expires_at > %s THEN 1 ELSE 0 END), 0)"
        f" FROM {Assignment._meta.db_table} WHERE project_id = %s AND labeler_id = %s"
    )
    params = [Assignment.Status.SUBMITTED, Assignment.Status.ACTIVE, connection.ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, project_id, labeler_id])
        done, assigned = cursor.fetchone()
    return int(done), int(assigned)


def latest_guideline_version(*, project_id: int) -> int | None:
    """The project's newest guideline version (None without guidelines)."""
    from annotation.models import Guideline

    return scalar(f"SELECT MAX(version) FROM {Guideline._meta.db_table} WHERE project_id = %s", [project_id])  # noqa: S608


def responses_of(*, prompt_id: int) -> list:
    """`prompt.responses.all()`: the prompt's responses in their model order (prompt, index)."""
    from annotation.models import Response

    index = connection.ops.quote_name(Response._meta.get_field("index").column)
    sql = f"SELECT * FROM {Response._meta.db_table} WHERE prompt_id = %s ORDER BY {index}"  # noqa: S608
    return fetch_models(Response, sql, [prompt_id])


def active_assignment_id(*, project_id: int, labeler_id: int) -> int | None:
    """The labeler's active assignment in the project with the latest lease, if any (usually none)."""
    from annotation.models import Assignment

    sql = (
        f"SELECT id FROM {Assignment._meta.db_table} WHERE project_id = %s AND labeler_id = %s"  # noqa: S608
        " AND status = %s ORDER BY expires_at DESC LIMIT 1"
    )
    return scalar(sql, [project_id, labeler_id, Assignment.Status.ACTIVE])


def user_for_token(key: str) -> tuple[Any, Any]:
    """(user, its Token) for an API token key, (None, None) for an unknown key: DRF's
    `Token.objects.select_related("user").get(key=key)` (every API request runs it) in one raw read."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    sql = (
        f"SELECT u.*, t.created AS token_created FROM {user_model._meta.db_table} u"  # noqa: S608
        f" JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} WHERE t.key = %s"
    )
    user = next(iter(fetch_models(user_model, sql, [key], extra=("token_created",))), None)
    if user is None:
        return None, None
    created = _convert(Token._meta.get_field("created").get_col(Token._meta.db_table), user.token_created)
    return user, Token(key=key, user=user, created=created)
