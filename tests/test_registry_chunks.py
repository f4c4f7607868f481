"""Chunk-by-chunk verified loading: per-chunk BLAKE3 digests recorded at registration, a reader
thread that hashes while the unpickler works, and no unverified byte ever reaching the unpickler."""

from __future__ import annotations

import pickle
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

import nbmlops as nbm
from nbmlops import api as reg
from nbmlops.errors import ArtifactIntegrityError, StoreError
from nbmlops.store import objects
from nbmlops.store.objects import ChunkDigests, ObjectStore, chunk_size_for
from pickle_bomb import Bomb

CHUNK = 4096


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 KiB, so that test-sized artifacts have several."""
    monkeypatch.setattr(objects, "MIN_CHUNK_SIZE", CHUNK)


def blake3_of(data: bytes | memoryview) -> bytes:
    import blake3

    return blake3.blake3(data).digest()


def forest() -> RandomForestRegressor:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return RandomForestRegressor(n_estimators=8, random_state=0).fit(X, X[:, 0] * 2)


def padded_bomb(marker: Path) -> list[object]:
    """Five chunks of data, then a Bomb: its bytes sit in the last chunk."""
    return [bytes(range(256)) * (5 * CHUNK // 256), Bomb(marker)]


def blob(mv: reg.ModelVersion) -> Path:
    path = nbm.get_store().objects.path_of(mv.sha256)
    path.chmod(0o644)
    return path


def whole_file_path_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the whole-file path was used")

    monkeypatch.setattr(ObjectStore, "read_verified", refuse)


def test_registering_records_the_digest_of_every_chunk(home: Path, db: sqlite3.Connection):
    mv = reg.register_model(forest(), "forest")
    data = nbm.get_store().objects.path_of(mv.sha256).read_bytes()
    size, step, digests = db.execute(
        "SELECT size, chunk_size, digests FROM object_chunks WHERE sha256 = ?", (mv.sha256,)
    ).fetchone()
    assert (size, step) == (len(data), chunk_size_for(len(data)))
    assert digests == b"".join(blake3_of(data[i : i + step]) for i in range(0, size, step))
    assert (
        mv.chunks == reg.get_model_version("forest/1").chunks == ChunkDigests(step, size, digests)
    )
    assert mv.chunks.count >= 3


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, CHUNK), (8 * CHUNK, CHUNK), (8 * CHUNK + 1, 2 * CHUNK), (100 * CHUNK, 16 * CHUNK)],
)
def test_chunk_size_is_a_power_of_two_giving_at_most_eight_chunks(size: int, expected: int):
    assert chunk_size_for(size) == expected
    assert ChunkDigests.of(bytes(size)).count <= 8


def test_chunk_digests_that_do_not_fit_the_size_are_refused():
    with pytest.raises(StoreError, match="do not fit a 10-byte object in 4-byte chunks"):
        ChunkDigests(4, 10, bytes(64))


def test_a_chunked_pickle_loads_without_reading_the_whole_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    model = forest()
    mv = reg.register_model(model, "forest")
    whole_file_path_fails(monkeypatch)
    X = np.random.default_rng(1).normal(size=(20, 4))
    np.testing.assert_array_equal(reg.load_model(mv.ref).predict(X), model.predict(X))
    assert reg.consumers("forest", 1)["loads"].tolist() == [1]


def test_loads_in_several_threads_at_once(home: Path):
    model = forest()
    mv = reg.register_model(model, "forest")
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(reg.load_model(mv.ref, record=False)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    X = np.random.default_rng(1).normal(size=(20, 4))
    assert [np.array_equal(m.predict(X), model.predict(X)) for m in results] == [True] * 4


def tamper_first_chunk(data: bytes) -> bytes:
    return data[:100] + bytes([data[100] ^ 1]) + data[101:]


def tamper_last_chunk(data: bytes) -> bytes:
    return data.replace(b"markerA", b"markerB")  # the Bomb is in the last chunk


@pytest.mark.parametrize(
    ("tamper", "detected", "nothing_deserialised"),
    [
        (tamper_first_chunk, "BLAKE3 digest of its chunk 0", True),
        (tamper_last_chunk, "BLAKE3 digest of its chunk 5", False),
        (lambda data: data[:-3], "shorter than the", True),
        (lambda data: data + b"\x00", "longer than the", True),
    ],
    ids=["first chunk", "last chunk", "truncated", "extended"],
)
def test_a_tampered_chunked_artifact_is_refused_and_its_payload_never_runs(
    home: Path, tmp_path: Path, tamper, detected: str, nothing_deserialised: bool
):
    mv = reg.register_model(padded_bomb(tmp_path / "markerA"), "bomb", format="pickle")
    assert mv.chunks is not None and mv.chunks.count == 6
    path = blob(mv)
    original = path.read_bytes()
    path.write_bytes(tamper(original))
    with pytest.raises(ArtifactIntegrityError, match="was changed after it was recorded") as info:
        reg.load_model("bomb/1")
    notes = "\n".join(info.value.__notes__)
    assert detected in notes
    assert ("nothing was deserialised" in notes) == nothing_deserialised
    assert nothing_deserialised or "no byte that failed verification was deserialised" in notes
    assert not list(tmp_path.glob("marker*"))
    path.write_bytes(original)  # the registered artifact loads (and so runs its code)
    reg.load_model("bomb/1")
    assert [p.name for p in tmp_path.glob("marker*")] == ["markerA"]


def test_the_unpickler_never_receives_a_tampered_chunk(home: Path, tmp_path: Path):
    padding = bytes(range(256)) * (5 * CHUNK // 256)
    marker = tmp_path / "marker"
    malicious = pickle.dumps([padding, Bomb(marker)], protocol=5)
    # A harmless artifact of the same size, identical up to the Bomb: only later chunks differ.
    length = next(
        n for n in range(400) if len(pickle.dumps([padding, "h" * n], 5)) == len(malicious)
    )
    mv = reg.register_model([padding, "h" * length], "list", format="pickle")
    path = blob(mv)
    assert path.read_bytes()[:CHUNK] == malicious[:CHUNK] and path.stat().st_size == len(malicious)
    path.write_bytes(malicious)
    with pytest.raises(ArtifactIntegrityError) as info:
        reg.load_model("list/1")
    assert "the unpickler had received the first" in "\n".join(info.value.__notes__)
    assert not marker.exists()
    pickle.loads(malicious)  # what the unpickler would have done with the tampered chunk
    assert marker.exists()


def test_a_stream_returns_verified_chunks_then_raises_at_the_tampered_one(home: Path):
    data = bytes(range(256)) * (3 * CHUNK // 256)
    store = nbm.get_store().objects
    digest, _ = store.put_bytes(data)
    chunks = ChunkDigests.of(data, CHUNK)
    path = store.path_of(digest)
    path.chmod(0o644)
    path.write_bytes(data[: 2 * CHUNK] + b"x" + data[2 * CHUNK + 1 :])
    with store.open_verified(digest, chunks) as stream:
        assert bytes(stream.read(2 * CHUNK)) == data[: 2 * CHUNK]
        for _ in range(2):  # and again: a failed chunk stays failed
            with pytest.raises(ArtifactIntegrityError, match="changed after it was recorded"):
                stream.read(1)
        assert stream.delivered == 2 * CHUNK


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_stream_serves_every_read_the_unpickler_makes(home: Path, protocol: int):
    value = {"text": "line\nbreak" * 50, "numbers": list(range(500)), "blob": bytes(3000)}
    data = pickle.dumps(value, protocol=protocol)
    store = nbm.get_store().objects
    digest, _ = store.put_bytes(data)
    with store.open_verified(digest, ChunkDigests.of(data, 7)) as stream:
        assert pickle.Unpickler(stream).load() == value
        stream.finish()


def test_stream_reads_across_chunks(home: Path):
    data = bytes(range(200))
    store = nbm.get_store().objects
    digest, _ = store.put_bytes(data)
    with store.open_verified(digest, ChunkDigests.of(data, 16)) as stream:
        buffer = bytearray(40)
        assert (bytes(stream.read(10)), stream.readinto(buffer)) == (data[:10], 40)
        assert bytes(buffer) == data[10:50]
        assert stream.readline() == data[50:200]  # no newline until the end
        assert bytes(stream.read()) == b"" and stream.delivered == 200


def edit_chunk_digests(home: Path, digests: bytes) -> None:
    """Someone edits object_chunks behind the store's back."""
    conn = sqlite3.connect(home / "nbmlops.db")
    conn.execute("DROP TRIGGER object_chunks_immutable")
    conn.execute("UPDATE object_chunks SET digests = ?", (digests,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("chunk", [0, 5])
def test_chunk_digests_that_disagree_with_the_sha256_are_refused(
    home: Path, tmp_path: Path, chunk: int
):
    mv = reg.register_model(padded_bomb(tmp_path / "marker"), "bomb", format="pickle")
    assert mv.chunks is not None
    digests = bytearray(mv.chunks.digests)
    digests[32 * chunk] ^= 1
    edit_chunk_digests(home, bytes(digests))
    with pytest.raises(StoreError, match=r"matches its sha256 .* not the BLAKE3 digest of bytes"):
        reg.load_model("bomb/1")
    assert not list(tmp_path.glob("marker*"))


def registered_before(home: Path, *migrations: str) -> None:
    """Make the store's versions look registered before these digest tables existed: the tables
    and their migration records are dropped, and reopening the store creates them empty."""
    nbm.get_store().close()
    conn = sqlite3.connect(home / "nbmlops.db")
    for name, table in [
        ("0006_object_digests", "object_digests"),
        ("0008_object_chunks", "object_chunks"),
    ]:
        if name in migrations:
            conn.execute(f"DROP TABLE {table}")
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", (name,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "migrations",
    [("0008_object_chunks",), ("0006_object_digests", "0008_object_chunks")],
    ids=["before chunk digests", "before any BLAKE3 digest"],
)
def test_an_older_version_loads_whole_then_gets_its_chunk_digests(
    home: Path, monkeypatch: pytest.MonkeyPatch, migrations: tuple[str, ...]
):
    model = forest()
    reg.register_model(model, "forest")
    registered_before(home, *migrations)
    old = reg.get_model_version("forest/1")
    assert old.chunks is None and (old.blake3 is None) == ("0006_object_digests" in migrations)
    reg.load_model("forest/1", record=False)  # a read-only load records nothing
    assert reg.get_model_version("forest/1").chunks is None
    first = reg.load_model("forest/1")  # verified whole: the digests of those bytes are recorded
    mv = reg.get_model_version("forest/1")
    data = nbm.get_store().objects.path_of(mv.sha256).read_bytes()
    assert mv.chunks == ChunkDigests.of(data) and mv.blake3 == blake3_of(data).hex()
    whole_file_path_fails(monkeypatch)  # from now on: chunk by chunk
    X = np.random.default_rng(1).normal(size=(20, 4))
    np.testing.assert_array_equal(reg.load_model("forest/1").predict(X), first.predict(X))
