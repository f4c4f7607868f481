"""A stored object whose file was tampered with on disk is named, not a raw OSError (issue #13,
item 15): every place the object store opens or reads a file, on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.errors import StoreError
from nbmlops.store import Store
from nbmlops.store.objects import ChunkDigests


def _replaced_by_a_folder(store: Store, data: bytes) -> tuple[str, Path]:
    digest, _ = store.objects.put_bytes(data)
    path = store.objects.path_of(digest)
    path.chmod(0o644)
    path.unlink()
    path.mkdir()
    return digest, path


@pytest.mark.parametrize("size", [10, 3 << 20])  # one chunk; several, read by a thread
def test_an_object_replaced_by_a_folder_is_named_with_what_to_do(tmp_path: Path, size: int):
    store = Store.open(tmp_path / ".nbmlops")
    data = bytes(range(256)) * (size // 256 + 1)
    digest, path = _replaced_by_a_folder(store, data)
    reads = [
        lambda: store.objects.read_verified(digest),
        lambda: store.objects.open_verified(digest, ChunkDigests.of(data)).finish(),
    ]
    for read in reads:
        with pytest.raises(StoreError, match=f"Stored object {digest} at {path} is a folder"):
            read()
    with pytest.raises(StoreError, match="restore that file from a backup"):
        read()
    store.close()


def test_storing_over_a_folder_fails_instead_of_claiming_it_stored(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    _, path = _replaced_by_a_folder(store, b"payload")
    with pytest.raises(StoreError, match=f"Could not write object to {path.parent}"):
        store.objects.put_bytes(b"payload")
    store.close()


def test_loading_a_model_whose_file_became_a_folder_says_which(home: Path):
    mv = nbm.register_model({"weights": [1, 2, 3]}, "m", format="pickle")
    path = nbm.get_store().objects.path_of(mv.sha256)
    path.chmod(0o644)
    path.unlink()
    path.mkdir()
    with pytest.raises(StoreError, match=f"Stored object {mv.sha256} .* is a folder, not a file"):
        nbm.load_model("m/1")
    shutil.rmtree(path)
