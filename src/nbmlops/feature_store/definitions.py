"""Feature view definitions: one definition per feature, fingerprinted, versioned by name.

A definition's fingerprint covers what decides its values: the normalised code (the function's
syntax tree without its name, docstring, decorators, comments or formatting), the source it
reads, the keys, the time columns, the TTL and the feature dtypes. Re-running the cell that
defines a view records nothing new; an edited definition is the next version of the name; a
new name with the fingerprint of an existing view is "same definition, other name" and warned
about, which Feast's by-name conflict check cannot see.

Offline rows: a view computed in Python (a function, or a transformation over a source) is
saved as dataset ``features.<view>`` (:mod:`nbmlops.data`), so a training set knows the exact
version of the feature data it used; a Parquet, Delta, dataset or SQL source without a
transformation is read where it is, by DuckDB, when a training set or materialisation needs it.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import hashlib
import inspect
import json
import re
import textwrap
import time
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops._display import parse_duration
from nbmlops.capture.environment import current_user
from nbmlops.data import tables
from nbmlops.data.dataset_version import run_here
from nbmlops.data.references import resolve_row
from nbmlops.errors import DatasetError, DuplicateFeatureWarning, FeatureError
from nbmlops.feature_store.point_in_time import FeatureTable
from nbmlops.store import features as sql
from nbmlops.store.db import Row, Store

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_KINDS = ("function", "dataframe", "parquet", "delta", "dataset", "sql")
_DATASET_PREFIX = "features."


@dataclasses.dataclass(frozen=True)
class Entity:
    """What features describe (a driver, a customer), identified by one or more key columns."""

    name: str
    keys: tuple[str, ...]
    description: str = ""


@dataclasses.dataclass(frozen=True)
class FeatureView:
    """One recorded version of a feature view (``driver_stats@2``)."""

    name: str
    version: int
    fingerprint: str
    entity: str
    keys: tuple[str, ...]
    timestamp: str
    created: str | None
    ttl_seconds: float
    features: tuple[tuple[str, str], ...]  # (name, arrow dtype)
    source_kind: str
    source: str
    transform: str | None
    description: str
    owner: str | None
    created_at: float

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _ in self.features]

    @property
    def dataset(self) -> str:
        """The dataset holding the rows of a view computed in Python."""
        return _DATASET_PREFIX + self.name

    def __str__(self) -> str:
        ttl = f", ttl {_duration(self.ttl_seconds)}" if self.ttl_seconds else ""
        return (
            f"{self.ref} ({self.entity}: {', '.join(self.keys)}; "
            f"{len(self.features)} feature{'s' if len(self.features) != 1 else ''}{ttl}; "
            f"{self.source_kind})"
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], keys: Sequence[str]) -> FeatureView:
        return cls(
            name=row["name"],
            version=int(row["version"]),
            fingerprint=row["fingerprint"],
            entity=row["entity"],
            keys=tuple(keys),
            timestamp=row["timestamp"],
            created=row["created"],
            ttl_seconds=float(row["ttl_seconds"]),
            features=tuple((f["name"], f["dtype"]) for f in row["features"]),
            source_kind=row["source_kind"],
            source=row["source"],
            transform=row["transform"],
            description=row["description"],
            owner=row["owner"],
            created_at=float(row["created_at"]),
        )


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def define_entity(
    store: Store, name: str, keys: str | Sequence[str], description: str = ""
) -> Entity:
    """Record entity ``name`` with its key column(s); the same again is a no-op, other keys
    for a recorded name are refused (views already join on the recorded ones)."""
    key_list = [keys] if isinstance(keys, str) else list(keys)
    if not name or not key_list or not all(isinstance(k, str) and k for k in key_list):
        raise FeatureError(
            f"Entity {name!r}: give a name and one or more key column names (keys={keys!r}).",
            value=keys,
        )
    store.create()
    sql.add_entity(store, name, key_list, description, time.time())
    row = sql.entity(store, name)
    assert row is not None
    if list(row["keys"]) != key_list:
        raise FeatureError(
            f"Entity {name!r} is recorded with keys {row['keys']}, not {key_list}; feature views "
            "join on the recorded keys. Use another entity name for other keys.",
            value=keys,
        )
    return Entity(name, tuple(row["keys"]), row["description"])


def _entity_keys(store: Store, entity: str, keys: str | Sequence[str] | None) -> tuple[str, ...]:
    """The keys of ``entity``: the declared ones, else ``keys``, else the entity's own name as
    its one key column (a view may name a key column as its entity)."""
    row = sql.entity(store, entity) if store.exists() else None
    if row is not None and keys is None:
        return tuple(row["keys"])
    return tuple([entity] if keys is None else [keys] if isinstance(keys, str) else keys)


def normalised_code(function: Callable[..., Any]) -> str:
    """The function's syntax tree without its name, docstring, decorators, comments and
    formatting: two functions with this equal compute the same thing from the same inputs.
    Without readable source (typed at a plain ``python`` prompt), its compiled code instead."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        if code is None:
            raise FeatureError(
                f"Feature view function {function!r} has neither source code nor compiled "
                "code to fingerprint; pass a Python function.",
                value=function,
            ) from None
        return "code:" + _code_text(code)
    tree = ast.parse(source)
    node = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None
    )
    if node is None:  # a lambda: its whole statement
        return ast.dump(tree)
    node.name = "_"
    node.decorator_list = []
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        node.body = body[1:] or [ast.Pass()]
    return ast.dump(node)


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return repr((code.co_code.hex(), consts, code.co_names, code.co_varnames))


def _source_kind(source: Any, store: Store) -> tuple[str, str]:
    """(kind, text recorded) for a view's source."""
    if isinstance(source, str) and source.lstrip()[:7].lower() in ("select ", "with ", "select\n"):
        return "sql", " ".join(source.split())
    if isinstance(source, str | Path) and (
        Path(source).exists() or str(source).startswith(("s3://", "gs://", "az://", "file:"))
    ):
        path = Path(source)
        kind = "delta" if (path / "_delta_log").is_dir() else "parquet"
        return kind, str(path.resolve()) if path.exists() else str(source)
    if isinstance(source, str):
        if store.exists():
            try:
                row = resolve_row(store, source)
            except DatasetError:  # not a dataset reference: said below
                row = None
            if row is not None and row["kind"] == "table":
                return "dataset", f"{row['name']}@{row['version']}"
        raise FeatureError(
            f"source={source!r} is neither an existing path (Parquet file or folder, Delta "
            "table), a saved dataset ('name@version') nor SQL (SELECT ...).",
            value=source,
        )
    return "dataframe", ""


def _read_source(
    store: Store,
    kind: str,
    source: str,
    given: Any,
    columns: Sequence[str] | None = None,
    window: tuple[str, float | None, float] | None = None,
) -> pa.Table:
    """The rows a source holds now, as Arrow. A Parquet, Delta or SQL source is read by
    DuckDB with only ``columns`` and, with ``window`` (time column, after, until), only the rows
    whose time is in (after, until]; the other sources are read whole."""
    import duckdb  # heavy: only when a view's data is read

    if kind == "dataframe":
        return _as_arrow(given, "feature source")
    if kind == "dataset":
        return tables.load_table(store, resolve_row(store, source), "arrow")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")  # naive times are UTC, as in the join
        if kind == "sql":
            relation = con.sql(source)
        elif kind == "delta":
            from deltalake import DeltaTable

            relation = con.from_arrow(DeltaTable(source).to_pyarrow_dataset())
        else:
            pattern = str(Path(source) / "**" / "*.parquet") if Path(source).is_dir() else source
            relation = con.read_parquet(pattern)
        picked = ", ".join(_quoted(c) for c in columns) if columns else "*"
        query = f"SELECT {picked} FROM source"
        parameters: list[Any] = []
        if window is not None:
            column, after, until = window
            query += f" WHERE {_quoted(column)} <= to_timestamp(?)"
            parameters.append(until)
            if after is not None:
                query += f" AND {_quoted(column)} > to_timestamp(?)"
                parameters.append(after)
        con.register("source", relation)
        return con.sql(query, params=parameters).to_arrow_table()


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _as_arrow(frame: Any, view: str) -> pa.Table:
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    if hasattr(frame, "to_arrow") and not hasattr(frame, "to_pandas_dtype"):  # polars
        return frame.to_arrow()
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise FeatureError(
        f"Feature view {view!r}: the definition returned {type(frame).__name__}; return a "
        "pandas, polars or pyarrow table with the keys, the event time and the features.",
        view,
        frame,
    )


def _feature_columns(
    data: pa.Table, view: str, keys: Sequence[str], timestamp: str, created: str | None
) -> tuple[tuple[str, str], ...]:
    import pyarrow as pa

    needed = [*keys, timestamp, *([created] if created else [])]
    missing = [c for c in needed if c not in data.column_names]
    if missing:
        raise FeatureError(
            f"Feature view {view!r}: its data has no column(s) {missing} (columns: "
            f"{data.column_names}); the keys, timestamp= and created= name columns of it.",
            view,
            missing,
        )
    for column in (timestamp, created):
        if column and not (
            pa.types.is_timestamp(data.schema.field(column).type)
            or pa.types.is_date(data.schema.field(column).type)
        ):
            raise FeatureError(
                f"Feature view {view!r}: column {column!r} is {data.schema.field(column).type}, "
                "not a timestamp; convert it (pandas.to_datetime) in the definition.",
                view,
                column,
            )
    features = tuple((f.name, str(f.type)) for f in data.schema if f.name not in needed)
    if not features:
        raise FeatureError(
            f"Feature view {view!r}: no feature columns besides the keys and time columns.", view
        )
    return features


def define_view(
    store: Store,
    *,
    name: str,
    entity: str,
    timestamp: str,
    ttl: str | float | dt.timedelta = 0,
    source: Any = None,
    function: Callable[..., Any] | None = None,
    created: str | None = None,
    keys: str | Sequence[str] | None = None,
    description: str = "",
) -> FeatureView:
    """Record a feature view and compute its offline rows; see :func:`nbmlops.feature_view`."""
    if not name or not isinstance(name, str) or "@" in name or ":" in name:
        raise FeatureError(
            f"Feature view name {name!r} is not valid: use letters, digits and '_' "
            "(':' separates a view from a feature, '@' a version).",
            value=name,
        )
    if source is None and function is None:
        raise FeatureError(f"Feature view {name!r}: give source= or decorate a function.", name)
    ttl_seconds = _ttl_seconds(name, ttl)
    store.create()
    key_columns = _entity_keys(store, entity, keys)
    if source is None:
        kind, text, transform = "function", "", None
    else:
        kind, text = _source_kind(source, store)
        transform = None
    code = normalised_code(function) if function is not None else None
    if kind == "function":
        assert function is not None
        data = _as_arrow(function(), name)
    else:
        data = _read_source(store, kind, text, source)
        if function is not None:
            transform = code
            frame = source if kind == "dataframe" else data.to_pandas()
            data = _as_arrow(function(frame), name)
    if sql.entity(store, entity) is None and keys is None and entity not in data.column_names:
        raise FeatureError(
            f"Feature view {name!r}: entity {entity!r} is not declared and the data has no "
            f"column {entity!r}; declare it with nbm.entity({entity!r}, keys=[...]) or pass "
            "keys=.",
            name,
            entity,
        )
    features = _feature_columns(data, name, key_columns, timestamp, created)
    define_entity(store, entity, key_columns)
    fingerprint = _fingerprint(
        kind,
        text if kind != "function" else code or "",
        transform,
        key_columns,
        timestamp,
        created,
        ttl_seconds,
        features,
    )
    if kind != "dataframe" or transform is not None:  # a bare DataFrame has no code to compare
        _warn_duplicates(store, name, fingerprint)
    row = {
        "name": name,
        "fingerprint": fingerprint,
        "entity": entity,
        "timestamp": timestamp,
        "created": created,
        "ttl_seconds": ttl_seconds,
        "features": [{"name": f, "dtype": d} for f, d in features],
        "source_kind": kind,
        "source": code if kind == "function" else text,
        "transform": transform,
        "description": description,
        "owner": current_user(),
        "run_id": run_here(store),
        "created_at": time.time(),
    }
    version = sql.add_view(store, row)
    view = FeatureView.from_row({**row, "version": version}, key_columns)
    if kind in ("function", "dataframe") or transform is not None:
        saved = tables.save_table(store, data, view.dataset)
        sql.add_view_data(store, name, version, saved.name, saved.version, time.time())
    return get_view(store, name, version)


def _ttl_seconds(view: str, ttl: str | float | dt.timedelta | None) -> float:
    """``ttl`` in seconds; any zero (``0``, ``"0s"``, ``timedelta(0)``, None) means no TTL."""
    if ttl is None or (isinstance(ttl, dt.timedelta) and not ttl):
        return 0.0
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl == 0:
        return 0.0
    if isinstance(ttl, str) and re.fullmatch(r"\s*0+(\.0*)?\s*[a-z]*\s*", ttl.lower()):
        return 0.0
    try:
        return parse_duration(ttl, what="ttl")
    except ValueError as error:
        raise FeatureError(f"Feature view {view!r}: {error}; 0 means no TTL.", view, ttl) from None


def _fingerprint(
    kind: str,
    source: str,
    transform: str | None,
    keys: Sequence[str],
    timestamp: str,
    created: str | None,
    ttl_seconds: float,
    features: Sequence[tuple[str, str]],
) -> str:
    definition = {
        "kind": kind,
        "source": source,
        "transform": transform,
        "keys": list(keys),
        "timestamp": timestamp,
        "created": created,
        "ttl_seconds": ttl_seconds,
        "features": [list(f) for f in features],
    }
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _warn_duplicates(store: Store, name: str, fingerprint: str) -> None:
    others = [
        f"{r['name']}@{r['version']}"
        for r in sql.views_with_fingerprint(store, fingerprint)
        if r["name"] != name
    ]
    if others:
        warnings.warn(
            DuplicateFeatureWarning(
                f"Feature view {name!r} has the same definition as {', '.join(others)} (same "
                "definition, other name): use that view instead of a second name for it.",
                name,
                others,
            ),
            stacklevel=4,
        )


def get_view(store: Store, name: str, version: int | None = None) -> FeatureView:
    """View ``name`` at ``version`` (the latest when None); FeatureError listing the known
    views when there is none."""
    row = sql.view(store, name, version) if store.exists() else None
    if row is None:
        known = [r["name"] for r in sql.latest_views(store)] if store.exists() else []
        what = f"{name!r}" if version is None else f"{name}@{version}"
        raise FeatureError(
            f"No feature view {what}; "
            + (f"known: {', '.join(known)}." if known else "none defined yet (nbm.feature_view)."),
            name,
        )
    entity = sql.entity(store, row["entity"])
    assert entity is not None
    return FeatureView.from_row(row, entity["keys"])


def parse_feature_ref(ref: str) -> tuple[str, int | None, str]:
    """``"driver_stats:conv_rate"`` or ``"driver_stats@2:conv_rate"``: (view, version, feature)."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise FeatureError(
            f"Feature reference {ref!r}: write 'view:feature' (or 'view@2:feature').", value=ref
        )
    view, feature = ref.split(":")
    version: int | None = None
    if "@" in view:
        view, number = view.split("@", 1)
        if not number.isdigit():
            raise FeatureError(f"Feature reference {ref!r}: the version must be a number.", view)
        version = int(number)
    if not view or not feature:
        raise FeatureError(f"Feature reference {ref!r}: write 'view:feature'.", value=ref)
    return view, version, feature


def resolve_refs(store: Store, refs: Sequence[str]) -> list[tuple[FeatureView, list[str]]]:
    """The views and, for each, the features asked of it, in the order first named; unknown
    views and features are refused naming what there is."""
    if isinstance(refs, str) or not refs:
        raise FeatureError(
            f"features={refs!r}: give a list of 'view:feature' references.", value=refs
        )
    wanted: dict[tuple[str, int | None], list[str]] = {}
    for ref in refs:
        view_name, version, feature = parse_feature_ref(ref)
        wanted.setdefault((view_name, version), []).append(feature)
    out: list[tuple[FeatureView, list[str]]] = []
    for (name, number), features in wanted.items():
        view = get_view(store, name, number)
        unknown = [f for f in features if f not in view.feature_names]
        if unknown:
            raise FeatureError(
                f"Feature view {view.ref} has no feature(s) {unknown}; it has "
                f"{view.feature_names}.",
                name,
                unknown,
            )
        out.append((view, features))
    return out


def offline_data(
    store: Store,
    view: FeatureView,
    *,
    columns: Sequence[str] | None = None,
    window: tuple[float | None, float] | None = None,
) -> tuple[pa.Table, str | None]:
    """The offline rows of ``view`` and, when they are a saved dataset version, its ref.
    ``columns`` and ``window`` (event time after, until) let a source read by DuckDB skip
    what is not needed; rows computed in Python are read whole (their files are checked)."""
    if view.source_kind in ("function", "dataframe") or view.transform is not None:
        held = sql.view_data(store, view.name, view.version)
        if held is None:
            raise FeatureError(
                f"Feature view {view.ref} has no computed rows in this store; run the cell "
                "that defines it.",
                view.name,
            )
        row = resolve_row(store, f"{held['dataset']}@{held['dataset_version']}")
        return tables.load_table(store, row, "arrow"), f"{row['name']}@{row['version']}"
    timed = None if window is None else (view.timestamp, *window)
    data = _read_source(store, view.source_kind, view.source, None, columns, timed)
    return data, view.source if view.source_kind == "dataset" else None


def feature_table(
    store: Store, view: FeatureView, features: Sequence[str], *, arrow: bool = False
) -> tuple[FeatureTable, str | None]:
    """What the point-in-time join needs of ``view``: its offline rows (only the columns the
    join reads: a Parquet source is handed over as files, unless ``arrow`` asks for them read
    into an Arrow table), keys, time columns, TTL and the features asked; with the ref of the
    dataset version holding the rows."""
    needed = [*view.keys, view.timestamp, *([view.created] if view.created else []), *features]
    if view.source_kind == "parquet" and view.transform is None and not arrow:
        data: Any = view.source
        held = None
    else:
        data, held = offline_data(store, view, columns=needed)
    return (
        FeatureTable(
            view=view.name,
            data=data,
            keys=view.keys,
            timestamp=view.timestamp,
            features=tuple(features),
            created=view.created,
            ttl_seconds=view.ttl_seconds,
        ),
        held,
    )


def view_rows(store: Store) -> list[Row]:
    """The latest version of each view with its versions count and the models using it."""
    out = []
    for row in sql.latest_views(store):
        models = sql.models_using_view(store, row["name"])
        out.append(
            {
                **row,
                "versions": row["version"],
                "models": [f"{m['name']}/{m['version']}" for m in models],
            }
        )
    return out
