"""Model versions: registering, immutability, serialisation formats and hash-verified loading."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge

import nbmlops as nbm
from nbmlops import api as reg
from nbmlops.errors import (
    ArtifactIntegrityError,
    LibraryVersionWarning,
    ModelNotFoundError,
    NbmlopsWarning,
    RegistryError,
)
from nbmlops.registry.serialization import dump_model, load_model_bytes, pickle_globals
from nbmlops.store import runs as run_sql
from pickle_bomb import Bomb


def data(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 5, n)})
    return X, X["a"] * 3 + X["c"] + rng.normal(scale=0.1, size=n)


def trained_run(model: object = None, mae: float = 1.0, name: str = "model") -> str:
    """A run that read X_train and X_eval, logged mae and the fitted model; its id."""
    X, y = data()
    model = model if model is not None else RandomForestRegressor(n_estimators=5, random_state=0)
    with nbm.start_run() as run:
        model.fit(X, y)
        nbm.log_dataset(X, "X_train")
        nbm.log_dataset(X.iloc[:40], "X_eval")
        nbm.log_metric("mae", mae)
        nbm.log_model(model, name)
    return run.run_id


def test_register_from_a_run_keeps_an_immutable_snapshot(home: Path):
    run_id = trained_run(mae=0.7)
    mv = reg.register_model(run_id, "wine", "first try")
    artifact = nbm.get_run(run_id).artifacts[0]
    assert (mv.name, mv.version, mv.run_id, mv.description) == ("wine", 1, run_id, "first try")
    assert (mv.sha256, mv.size, mv.format) == (artifact["sha256"], artifact["size"], "pickle")
    assert mv.model_class == "sklearn.ensemble._forest.RandomForestRegressor"
    assert mv.metrics == {"mae": 0.7}
    assert {d["name"]: d["fingerprint"] for d in mv.datasets} == {
        d["name"]: d["dataset_id"] for d in nbm.get_run(run_id).datasets
    }
    assert mv.signature == {
        "columns": [
            {"name": "a", "dtype": "float64"},
            {"name": "b", "dtype": "float64"},
            {"name": "c", "dtype": "int64"},
        ],
        "n_features": 3,
        "source": "X_train",
    }
    assert {"python", "scikit-learn", "numpy"} <= set(mv.libraries)
    assert mv.created_by and abs(mv.created_at - time.time()) < 60


def test_identical_content_returns_the_existing_version(home: Path, db: sqlite3.Connection):
    run_id = trained_run()
    first = reg.register_model(run_id, "wine")
    with pytest.warns(NbmlopsWarning, match="already registered as wine/1"):
        again = reg.register_model(run_id[:6], "wine", "other words")
    other = reg.register_model(trained_run(Ridge()), "wine")
    assert (first.version, again.version, other.version) == (1, 1, 2)
    assert again == first and again.description is None
    kinds = db.execute("SELECT kind, version FROM model_events ORDER BY event_id").fetchall()
    assert kinds == [("registered", 1), ("registered", 2)]


@pytest.mark.parametrize("source", ["run", "object"])
def test_registering_the_same_model_again_warns_naming_the_existing_version(
    home: Path, source: str
):
    model = trained_run() if source == "run" else {"weights": [1.0, 2.0]}
    first = reg.register_model(model, "wine", format="pickle")
    origin = f" from run {first.run_id}" if source == "run" else ""
    with pytest.warns(NbmlopsWarning, match=f"already registered as wine/1{origin} on 20") as seen:
        again = nbm.register_model(model, "wine", format="pickle")
    assert again == first and "no new version was made" in str(seen[0].message)
    assert seen[0].filename == __file__  # points at the caller's line


def test_a_run_object_works_and_versions_count_per_name(home: Path):
    with nbm.start_run() as run:
        nbm.log_model(Ridge().fit(*data()), "m")
    assert reg.register_model(run, "a").version == 1
    assert reg.register_model(run, "b").version == 1
    assert reg.register_model(trained_run(), "a").version == 2


def test_registering_inside_the_run_sees_its_unwritten_model(home: Path):
    with nbm.start_run() as run:
        nbm.log_model(Ridge().fit(*data()), "m")
        nbm.log_metric("mae", 0.3)
        mv = reg.register_model(run.run_id, "early")
    assert mv.metrics == {"mae": 0.3} and mv.run_id == run.run_id


@pytest.mark.parametrize(
    ("models", "artifact", "message"),
    [
        ([], None, r"logged no model; log one with nbmlops.log_model"),
        (["m1", "m2"], None, r"logged 2 models \(m1, m2\); choose one with artifact="),
        (["m1"], "m9", r"logged no model named 'm9'; its models: m1"),
    ],
)
def test_run_model_choice_errors_list_the_models(home: Path, models, artifact, message):
    with nbm.start_run() as run:
        for name in models:
            nbm.log_model(Ridge().fit(*data()), name)
    with pytest.raises(RegistryError, match=message):
        reg.register_model(run.run_id, "wine", artifact=artifact)


def test_artifact_picks_one_of_several_models(home: Path):
    with nbm.start_run() as run:
        nbm.log_model(Ridge(alpha=1).fit(*data()), "small")
        nbm.log_model(Ridge(alpha=9).fit(*data()), "large")
    mv = reg.register_model(run.run_id, "wine", artifact="large")
    assert reg.load_model(mv.ref).alpha == 9


def test_live_estimator_is_registered_without_a_run_in_skops_format(home: Path):
    X, y = data()
    model = Ridge(alpha=0.5).fit(X, y)
    mv = reg.register_model(model, "live")
    assert (mv.run_id, mv.format, mv.metrics, mv.datasets) == (None, "skops", {}, [])
    assert mv.signature["columns"][0] == {"name": "a", "dtype": None}
    assert mv.libraries["skops"]
    loaded = reg.load_model("live")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_pickle_from_log_model_is_stored_as_skops_when_that_round_trips(home: Path):
    run_id = trained_run(Ridge())
    mv = reg.register_model(run_id, "ridge")
    assert mv.format == "skops" and mv.sha256 != nbm.get_run(run_id).artifacts[0]["sha256"]
    assert reg.register_model(run_id, "ridge").version == 1  # reproducible bytes: same hash
    assert reg.register_model(run_id, "kept", format="pickle").format == "pickle"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Ridge().fit(*data()), "skops"),
        (RandomForestRegressor(n_estimators=2, random_state=0).fit(*data()), "pickle"),
        ({"weights": [1, 2, 3], "bias": 0.5}, "skops"),
        (Path("not/a/model"), "pickle"),
    ],
)
def test_dump_model_uses_skops_only_where_default_trust_loads_it(model, expected):
    payload, fmt = dump_model(model)
    assert fmt == expected
    loaded = load_model_bytes(payload, fmt)
    if hasattr(model, "predict"):
        X, _ = data()
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    else:
        assert loaded == model


def test_skops_output_is_byte_for_byte_reproducible():
    model = Ridge().fit(*data())
    assert dump_model(model)[0] == dump_model(Ridge().fit(*data()))[0]


def test_forcing_skops_on_a_tree_model_says_why_not(home: Path):
    forest = RandomForestRegressor(n_estimators=2).fit(*data())
    with pytest.raises(RegistryError, match=r"cannot be saved in skops' format.*format='pickle'"):
        reg.register_model(forest, "forest", format="skops")


def test_pickle_globals_are_read_without_unpickling():
    forest = RandomForestRegressor(n_estimators=2).fit(*data())
    found = pickle_globals(pickle.dumps(forest, protocol=5))
    assert {"sklearn.tree._tree.Tree", "sklearn.ensemble._forest.RandomForestRegressor"} <= found


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE model_versions SET sha256 = 'x'", "model_versions are immutable"),
        ("DELETE FROM model_versions", "model_versions are never deleted"),
        ("UPDATE model_events SET kind = 'registered'", "model_events is append-only"),
        ("DELETE FROM model_events", "model_events is append-only"),
        ("UPDATE object_digests SET blake3 = 'x'", "object_digests are immutable"),
        ("DELETE FROM object_digests", "object_digests are never deleted"),
        ("UPDATE object_chunks SET digests = x''", "object_chunks are immutable"),
        ("DELETE FROM object_chunks", "object_chunks are never deleted"),
    ],
)
def test_versions_and_events_cannot_be_changed_from_another_connection(
    home: Path, db: sqlite3.Connection, statement, message
):
    reg.register_model(trained_run(), "wine")
    with pytest.raises(sqlite3.IntegrityError, match=message):
        db.execute(statement)
    assert db.execute("SELECT COUNT(*) FROM model_versions").fetchone() == (1,)


def registered_before_blake3(home: Path) -> None:
    """Make the store's versions look registered before migration 0006 recorded BLAKE3 digests:
    its table and migration record are dropped, and reopening the store applies 0006 again."""
    nbm.get_store().close()
    conn = sqlite3.connect(home / "nbmlops.db")
    conn.execute("DROP TABLE object_digests")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0006_object_digests'")
    conn.commit()
    conn.close()


def blake3_of(data: bytes) -> str:
    import blake3

    return blake3.blake3(data).hexdigest()


def test_registering_records_the_artifacts_blake3(home: Path, db: sqlite3.Connection):
    mv = reg.register_model(trained_run(), "wine")
    data = nbm.get_store().objects.path_of(mv.sha256).read_bytes()
    row = db.execute("SELECT sha256, blake3, size FROM object_digests").fetchall()
    assert row == [(mv.sha256, blake3_of(data), len(data))]
    assert mv.blake3 == blake3_of(data) == reg.get_model_version("wine/1").blake3
    assert reg.register_model(trained_run(), "other").blake3 == mv.blake3  # one row per content


def test_a_version_from_before_blake3_is_checked_by_sha256_then_gets_its_blake3(home: Path):
    X, _ = data()
    reg.register_model(trained_run(), "wine")
    registered_before_blake3(home)
    assert reg.get_model_version("wine/1").blake3 is None
    reg.load_model("wine/1", record=False)  # a read-only load records nothing
    assert reg.get_model_version("wine/1").blake3 is None
    first = reg.load_model("wine/1")  # sha256-verified bytes: their BLAKE3 is recorded
    mv = reg.get_model_version("wine/1")
    assert mv.blake3 == blake3_of(nbm.get_store().objects.path_of(mv.sha256).read_bytes())
    np.testing.assert_array_equal(reg.load_model("wine/1").predict(X), first.predict(X))


@pytest.mark.parametrize("digest", ["blake3", "sha256 (registered before blake3)"])
def test_a_tampered_artifact_is_refused_and_never_unpickled(
    home: Path, tmp_path: Path, digest: str
):
    mv = reg.register_model(Bomb(tmp_path / "markerA"), "bomb")
    if digest != "blake3":
        registered_before_blake3(home)
    assert (reg.get_model_version("bomb/1").blake3 is None) == (digest != "blake3")
    blob = nbm.get_store().objects.path_of(mv.sha256)
    original = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(original.replace(b"markerA", b"markerB"))  # still a valid pickle
    with pytest.raises(ArtifactIntegrityError, match="was changed after it was recorded") as info:
        reg.load_model("bomb/1")
    assert "nothing was deserialised" in "".join(info.value.__notes__)
    assert not list(tmp_path.glob("marker*"))
    blob.write_bytes(original)  # the untouched artifact does load (and so would run code)
    reg.load_model("bomb/1")
    assert [p.name for p in tmp_path.glob("marker*")] == ["markerA"]


@pytest.mark.parametrize(
    "tamper",
    [lambda data: data + b".", lambda data: data[:-1]],
    ids=["a byte appended", "the last byte cut"],
)
def test_a_whole_file_artifact_of_another_length_is_refused(home: Path, tmp_path: Path, tamper):
    mv = reg.register_model(Bomb(tmp_path / "marker"), "bomb")
    assert mv.chunks is not None and mv.chunks.count == 1  # loads whole
    blob = nbm.get_store().objects.path_of(mv.sha256)
    blob.chmod(0o644)
    blob.write_bytes(tamper(blob.read_bytes()))
    with pytest.raises(ArtifactIntegrityError, match="was changed after it was recorded") as info:
        reg.load_model("bomb/1")
    assert "nothing was deserialised" in "".join(info.value.__notes__)
    assert not list(tmp_path.glob("marker*"))


def test_whole_file_loads_in_several_threads_at_once(home: Path):
    X, y = data()
    models = [RandomForestRegressor(n_estimators=3, random_state=i).fit(X, y) for i in range(3)]
    versions = [reg.register_model(m, f"forest-{i}", format="pickle") for i, m in enumerate(models)]
    assert all(mv.chunks is not None and mv.chunks.count == 1 for mv in versions)
    loaded: dict[int, list[object]] = {i: [] for i in range(3)}

    def load(i: int) -> None:
        for _ in range(5):
            loaded[i].append(reg.load_model(f"forest-{i}/1", record=False))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for i, model in enumerate(models):
        expected = model.predict(X)
        assert len(loaded[i]) == 5
        assert all(np.array_equal(m.predict(X), expected) for m in loaded[i])


def test_a_blake3_record_that_disagrees_with_the_sha256_is_refused(home: Path, tmp_path: Path):
    reg.register_model(Bomb(tmp_path / "marker"), "bomb")
    conn = sqlite3.connect(home / "nbmlops.db")  # someone edits the database behind our back
    conn.execute("DROP TRIGGER object_digests_immutable")
    conn.execute("UPDATE object_digests SET blake3 = ?", ("0" * 64,))
    conn.commit()
    conn.close()
    with pytest.raises(nbm.NbmlopsError, match=r"matches its sha256 .* but not the BLAKE3 digest"):
        reg.load_model("bomb/1")
    assert not list(tmp_path.glob("marker*"))


def test_a_changed_artifact_with_its_blake3_record_edited_too_is_refused(
    home: Path, tmp_path: Path
):
    mv = reg.register_model(Bomb(tmp_path / "markerA"), "bomb")
    blob = nbm.get_store().objects.path_of(mv.sha256)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"markerA", b"markerB"))
    conn = sqlite3.connect(home / "nbmlops.db")  # the writer edits the digest to match
    conn.execute("DROP TRIGGER object_digests_immutable")
    conn.execute("UPDATE object_digests SET blake3 = ?", (blake3_of(blob.read_bytes()),))
    conn.commit()
    conn.close()
    with pytest.raises(ArtifactIntegrityError, match="was changed after it was recorded") as info:
        reg.load_model("bomb/1")
    notes = "".join(info.value.__notes__)
    assert "Detected by its sha256 (its content address)" in notes
    assert "nothing was deserialised" in notes
    assert not list(tmp_path.glob("marker*"))


def test_a_missing_artifact_is_a_clear_error(home: Path):
    mv = reg.register_model(Ridge().fit(*data()), "gone")
    blob = nbm.get_store().objects.path_of(mv.sha256)
    blob.chmod(0o644)
    blob.unlink()
    with pytest.raises(nbm.NbmlopsError, match=r"is missing from .*objects"):
        reg.load_model("gone")


def test_allow_pickle_false_refuses_pickles(home: Path):
    reg.register_model(trained_run(), "forest")
    with pytest.raises(RegistryError, match="is a pickle and allow_pickle=False"):
        reg.load_model("forest", allow_pickle=False)


def test_loading_with_other_library_versions_warns(home: Path):
    store = nbm.get_store()
    with nbm.start_run() as run:
        pass
    digest, size = store.objects.put_bytes(pickle.dumps(Ridge().fit(*data()), protocol=5))
    meta = {"format": "pickle", "class": "sklearn.linear_model._ridge.Ridge"}
    meta["libraries"] = {"scikit-learn": "0.0.1", "python": "3.11.0"}
    artifact = {"name": "old", "kind": "model", "sha256": digest, "size": size}
    artifact.update(media_type=None, meta=json.dumps(meta), created_at=time.time())
    run_sql.write_run_data(store, run.run_id, artifacts=[artifact])
    mv = reg.register_model(run.run_id, "old", format="pickle")
    with pytest.warns(LibraryVersionWarning, match=r"saved with scikit-learn 0.0.1; .* has scikit"):
        assert isinstance(reg.load_model(mv.ref), Ridge)


def test_current_libraries_load_without_warnings(home: Path):
    reg.register_model(trained_run(), "wine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.load_model("wine")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", r"Model 'nope' not found .*registered models: wine"),
        ("wine/7", r"Model 'wine/7' not found .*wine has versions 1"),
        ("wine@prod", r"wine has no alias 'prod' \(aliases: @champion -> 1\); set it with"),
        ("wine/x", r"not valid: use 'name/3', 'name@alias' or 'name'"),
        ("bad name", r"Model name 'bad name' is not valid"),
    ],
)
def test_bad_references_say_what_exists(home: Path, ref, message):
    reg.register_model(trained_run(), "wine")
    reg.set_alias("wine", "champion", 1)
    with pytest.raises((ModelNotFoundError, RegistryError), match=message):
        reg.get_model_version(ref)


@pytest.mark.parametrize("ref", ["wine", "wine/2", "wine@latest", "wine@staging"])
def test_references_resolve(home: Path, ref):
    reg.register_model(trained_run(), "wine")
    reg.register_model(trained_run(Ridge()), "wine")
    reg.set_alias("wine", "staging", 2)
    assert reg.get_model_version(ref).version == 2
    assert reg.get_model_version("wine", 1).version == 1


@pytest.mark.parametrize("alias", ["latest", "1st", "a/b", ""])
def test_invalid_aliases_are_refused(home: Path, alias):
    reg.register_model(trained_run(), "wine")
    with pytest.raises(RegistryError, match="is not valid"):
        reg.set_alias("wine", alias, 1)


def test_model_version_views_and_repr(home: Path):
    mv = reg.register_model(trained_run(mae=0.5), "wine")
    reg.set_alias("wine", "champion", 1)
    assert mv.aliases == ["champion"] and mv.status == "active" and not mv.deprecated
    assert repr(mv).startswith("<ModelVersion wine/1 RandomForestRegressor pickle")
    assert repr(mv).endswith("@champion>")
    assert "metrics.mae" in mv._repr_html_() and "X_train" in mv._repr_html_()
    assert mv.to_dict()["aliases"] == ["champion"]
    assert json.dumps(mv.to_dict())


def test_models_and_versions_frames(home: Path):
    reg.register_model(trained_run(mae=0.9), "wine")
    reg.register_model(trained_run(Ridge(), mae=0.4), "wine")
    reg.set_alias("wine", "champion", 2)
    models = reg.models()
    assert models[["name", "latest_version", "versions", "aliases"]].values.tolist() == [
        ["wine", 2, 2, "champion=2"]
    ]
    versions = reg.model_versions("wine")
    assert versions["version"].tolist() == [1, 2]
    assert versions["metrics.mae"].tolist() == [0.9, 0.4]
    assert versions["aliases"].tolist() == ["", "champion"]


def test_concurrent_registrations_get_distinct_consecutive_versions(home: Path):
    code = textwrap.dedent(
        """
        import sys
        import nbmlops as nbm
        for i in range(5):
            nbm.register_model({"worker": sys.argv[1], "i": i}, "shared", format="pickle")
        """
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(w)], cwd=home.parent) for w in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    assert reg.model_versions("shared")["version"].tolist() == list(range(1, 21))


def test_registry_stays_light():
    heavy = ["pandas", "numpy", "sklearn", "skops", "scipy"]
    code = f"import sys, nbmlops.registry; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_setting_an_alias_where_it_already_points_records_nothing(home: Path):
    reg.register_model(trained_run(), "wine")
    reg.set_alias("wine", "champion", 1)
    reg.set_alias("wine", "champion", 1)
    assert reg.model_history("wine")["kind"].tolist() == ["registered", "alias_set"]


def test_a_library_format_the_model_has_not_is_refused_not_replaced(home):
    from sklearn.linear_model import LinearRegression

    from nbmlops.errors import RegistryError

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    with pytest.raises(RegistryError, match="cannot be saved as lightgbm-text"):
        nbm.register_model(model, "wrong-format", format="lightgbm-text")
    assert nbm.models().empty
