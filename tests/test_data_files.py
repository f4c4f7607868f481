"""Files datasets (issue #16 item 2): a folder saved as versions of content-addressed files,
deduplicated, checked out byte-identical, diffed file by file, and described by a DVC 3 pointer
that a real ``dvc`` accepts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.data import files as F
from nbmlops.data.references import resolve_row
from nbmlops.errors import DatasetError
from nbmlops.store import Store
from side_venv import side_venv


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and permission bits, by relative POSIX path."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def objects_bytes(store: Store) -> int:
    return sum(p.stat().st_size for p in store.objects.root.rglob("*") if p.is_file())


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("id,x\n1,2\n")
    (folder / "c.txt").write_text("gone soon")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "sub" / "b.bin").chmod(0o750)
    return folder


@pytest.fixture
def three(empty_store: Store, raw: Path) -> list[tuple[nbm.DatasetVersion, dict]]:
    """Three versions: as made, then a.csv changed and d.txt added, then c.txt removed."""
    saved = [(F.save_files(empty_store, raw, "raw"), tree(raw))]
    (raw / "a.csv").write_text("id,x\n1,2\n3,4\n")
    (raw / "d.txt").write_text("new")
    saved.append((F.save_files(empty_store, raw, "raw"), tree(raw)))
    (raw / "c.txt").unlink()
    saved.append((F.save_files(empty_store, raw, "raw"), tree(raw)))
    return saved


def test_three_versions_store_each_content_once(empty_store: Store, raw: Path) -> None:
    first = F.save_files(empty_store, raw, "raw")
    before = objects_bytes(empty_store)
    (raw / "a.csv").write_text("id,x\n1,2\n3,4\n")
    second = F.save_files(empty_store, raw, "raw")
    manifest = resolve_row(empty_store, "raw@2")["manifest"]
    manifest_size = empty_store.objects.path_of(manifest).stat().st_size
    assert (first.version, first.n_rows, first.kind, first.mode) == (1, 3, "files", "files")
    assert first.added_bytes == first.n_bytes == 9 + 9 + 10240
    assert second.added_bytes == len("id,x\n1,2\n3,4\n")
    assert objects_bytes(empty_store) - before == second.added_bytes + manifest_size
    assert str(second).startswith("raw@2 (3 files, ")


def test_versions_check_out_byte_identical_with_modes(three: list, tmp_path: Path) -> None:
    store = three[0][0].store
    for version, expected in three:
        out = F.checkout_files(store, resolve_row(store, version.ref), tmp_path / version.ref)
        assert tree(out) == expected
    assert [v.n_rows for v, _ in three] == [3, 4, 3]
    assert [v.added_bytes for v, _ in three] == [10258, 16, 0]


def test_diff_lists_added_removed_changed_files(three: list) -> None:
    store = three[0][0].store
    diff = F.diff_files(store, resolve_row(store, "raw@1"), resolve_row(store, "raw@3"))
    assert str(diff) == "raw@1 -> raw@3: 1 added, 1 removed, 1 changed, 1 unchanged (-2 bytes)"
    frame = diff.to_frame()
    assert frame.to_dict("records") == [
        {"path": "a.csv", "change": "changed", "old_size": 9, "new_size": 13},
        {"path": "c.txt", "change": "removed", "old_size": 9, "new_size": None},
        {"path": "d.txt", "change": "added", "old_size": None, "new_size": 3},
    ]
    assert "1 added" in diff._repr_html_()


def test_restore_makes_a_new_version_equal_to_an_old_one(three: list, tmp_path: Path) -> None:
    store = three[0][0].store
    restored = F.restore_files(store, "raw", 1)
    assert (restored.version, restored.mode, restored.restored_from) == (4, "restore", 1)
    assert (restored.fingerprint, restored.added_bytes) == (three[0][0].fingerprint, 0)
    out = F.checkout_files(store, resolve_row(store, "raw@4"), tmp_path / "out")
    assert tree(out) == three[0][1]


def test_identical_content_returns_the_latest_version(empty_store: Store, raw: Path) -> None:
    first = F.save_files(empty_store, raw, "raw")
    os.utime(raw / "a.csv", ns=(1, 1))  # touched, not changed
    again = F.save_files(empty_store, raw, "raw")
    assert again == first
    assert [v.version for v in nbm.dataset_versions("raw")] == [1]
    copy = shutil.copytree(raw, raw.parent / "elsewhere")
    assert F.save_files(empty_store, copy, "raw").fingerprint == first.fingerprint


def test_single_file_fingerprint_is_what_log_dataset_records(empty_store: Store, raw: Path) -> None:
    version = F.save_files(empty_store, raw / "a.csv", "a")
    with nbm.start_run() as run:
        digest = run.log_dataset(raw / "a.csv")
    assert version.fingerprint == digest
    assert version.n_rows == 1


def test_unchanged_old_files_are_not_read_again(
    empty_store: Store, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in raw.rglob("*"):
        os.utime(path, ns=(10**18, 10**18))  # 2001: well before this save hashes them
    F.save_files(empty_store, raw, "raw")
    read: list[str] = []
    store_file = F._store_file
    monkeypatch.setattr(F, "_store_file", lambda *a: read.append(a[2]) or store_file(*a))
    (raw / "a.csv").write_text("id,x\n9,9\n")  # same size, a new mtime
    second = F.save_files(empty_store, raw, "raw")
    assert read == ["a.csv"]
    assert second.version == 2


def test_a_change_within_the_same_mtime_tick_is_seen(empty_store: Store, raw: Path) -> None:
    stat = (raw / "a.csv").stat()
    F.save_files(empty_store, raw, "raw")
    (raw / "a.csv").write_text("id,x\n9,9\n")  # same size, same inode
    os.utime(raw / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert F.save_files(empty_store, raw, "raw").version == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nope", "does not exist; give the path of a file or a folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no files; there is nothing"),
        (
            lambda d: (d / "r").mkdir() or (d / "r" / "x").symlink_to(d / "gone") or d / "r",
            "file {d}/r/x cannot be read (No such file or directory)",
        ),
        (
            lambda d: (d / "s").mkdir() or (d / "s" / "l").symlink_to(d) or d / "s",
            "{d}/s/l is a symlink to a folder",
        ),
    ],
)
def test_bad_sources_are_refused_by_name(empty_store: Store, tmp_path: Path, make, message) -> None:
    with pytest.raises(DatasetError, match="Dataset 'raw'") as error:
        F.save_files(empty_store, make(tmp_path), "raw")
    assert message.format(d=tmp_path) in str(error.value)
    assert error.value.name == "raw"
    assert nbm.datasets()["name"].tolist() == []


def test_a_table_name_is_refused(empty_store: Store, raw: Path) -> None:
    import pandas as pd

    nbm.save_dataset(pd.DataFrame({"x": [1]}), "t")
    with pytest.raises(DatasetError, match=f"Dataset 't' is a table, not files; save {raw}"):
        F.save_files(empty_store, raw, "t")


def test_checkout_refuses_a_file_target_and_other_content(three: list, tmp_path: Path) -> None:
    store = three[0][0].store
    row = resolve_row(store, "raw@1")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match=r"checkout target .*/file is a file; give a folder"):
        F.checkout_files(store, row, tmp_path / "file")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("mine")
    with pytest.raises(DatasetError, match=r"1 file\(s\) under .* exist with other content"):
        F.checkout_files(store, row, out)
    assert tree(out) == {"a.csv": (b"mine", 0o644)}  # nothing written
    assert tree(F.checkout_files(store, row, out, force=True)) == three[0][1]


def test_checkout_refuses_a_damaged_object(three: list, tmp_path: Path) -> None:
    store = three[0][0].store
    row = resolve_row(store, "raw@1")
    damaged = store.objects.path_of(hashlib.sha256(b"gone soon").hexdigest())
    damaged.chmod(0o644)
    damaged.write_bytes(b"gone SOON")
    with pytest.raises(nbm.ArtifactIntegrityError, match="was changed after it was recorded"):
        F.checkout_files(store, row, tmp_path / "out")
    assert not (tmp_path / "out" / "c.txt").exists()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_dvc_pointer_format_for_a_folder_and_a_file(empty_store: Store, raw: Path) -> None:
    F.save_files(empty_store, raw, "raw", dvc=True)
    listing = [
        {"md5": md5(b"id,x\n1,2\n"), "relpath": "a.csv"},
        {"md5": md5(b"gone soon"), "relpath": "c.txt"},
        {"md5": md5(bytes(range(256)) * 40), "relpath": "sub/b.bin"},
    ]
    folder = md5(json.dumps(listing, sort_keys=True).encode())
    assert (raw.parent / "raw.dvc").read_text() == (
        f"outs:\n- md5: {folder}.dir\n  size: 10258\n  nfiles: 3\n  hash: md5\n  path: raw\n"
    )
    F.save_files(empty_store, raw / "a.csv", "a", dvc=True)
    digest = md5(b"id,x\n1,2\n")
    assert (raw / "a.csv.dvc").read_text() == (
        f"outs:\n- md5: {digest}\n  size: 9\n  hash: md5\n  path: a.csv\n"
    )


def test_dvc_pointer_needs_md5s(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"No md5 recorded for a\.csv: a DVC pointer needs"):
        F.write_dvc_pointer(tmp_path, [{"path": "a.csv", "size": 1, "sha256": "0"}])


def test_a_real_dvc_accepts_the_pointer(empty_store: Store, raw: Path, tmp_path: Path) -> None:
    DVC = side_venv(".venv-dvc", "dvc>=3,<4", "dvc")
    repo = tmp_path / "repo"
    shutil.copytree(raw, repo / "raw", symlinks=True)
    shutil.copytree(raw, tmp_path / "theirs" / "raw", symlinks=True)
    for where in (repo, tmp_path / "theirs"):
        subprocess.run(["git", "init", "-q"], cwd=where, check=True)
        subprocess.run([DVC, "init", "-q"], cwd=where, check=True)
    F.save_files(empty_store, repo / "raw", "raw", dvc=True)
    subprocess.run([DVC, "add", "-q", "raw"], cwd=tmp_path / "theirs", check=True)
    assert (repo / "raw.dvc").read_text() == (tmp_path / "theirs" / "raw.dvc").read_text()
    status = subprocess.run(
        [DVC, "data", "status", "--json"], cwd=repo, check=True, capture_output=True, text=True
    )
    assert "uncommitted" not in json.loads(status.stdout)  # the data matches the pointer
    (repo / "raw" / "a.csv").write_text("changed")
    status = subprocess.run(
        [DVC, "data", "status", "--json"], cwd=repo, check=True, capture_output=True, text=True
    )
    assert json.loads(status.stdout)["uncommitted"] == {"modified": ["raw/"]}
