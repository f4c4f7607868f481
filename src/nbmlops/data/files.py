"""Files datasets: a file or a folder as a version of a named dataset, the way DVC versions
them, without pointer files in git unless asked (issue #16 item 2).

Each file is stored once in the store's objects (content-addressed by sha256, so a file that
did not change costs nothing in the next version, nor in another dataset), and a version is a
manifest object listing ``{"path", "size", "sha256", "mode", "mtime_ns", "inode"}`` per file
(``md5`` too when a DVC pointer was asked for, ``xxh128`` for a single-file dataset). The
version's fingerprint is the XXH3-128 of the sorted (path, sha256) list, so the same content
always has the same fingerprint; a single file's is the file's own XXH3-128, which is what
``run.log_dataset(path)`` records, so lineage joins a run that logged the file to the version.
"Content" is the paths and the bytes: a change of mode alone is not a new version.

Hashing is what made DVC slow on big folders (dvc#10251: 6 min 52 s where ``md5sum`` took
40 s): here files are hashed on a thread pool (hashlib releases the GIL), each read once, and a
file whose size, mtime and inode are those recorded in the previous version's manifest for the
same source folder is not read at all (DVC's state database does the same). That reuse is safe
as git's index is: only when the recorded mtime is more than two seconds older than the moment
that version started hashing, so a file written in the same timestamp tick as it was hashed
(a "racily clean" file in git's terms) is always read again.

Symlinks: a symlink to a file is stored as the file it points to (DVC does the same); a
symlink to a folder is refused (DVC skips it silently, and following it could loop or pull in
a whole other tree). Checking out writes files only, and leaves files under the target that
the version does not list alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import xxhash

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.data.dataset_version import DatasetVersion, manifest_files, run_here
from nbmlops.data.references import Reference, check_name, get_version, resolve_row
from nbmlops.errors import ArtifactIntegrityError, DatasetError
from nbmlops.fingerprint import fingerprint
from nbmlops.store import datasets as sql
from nbmlops.store.db import Row, Store

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = 1 << 20
_WORKERS = 4  # hashing and reading overlap on 2 cores; more threads only add seeks
_RACY_NS = 2_000_000_000  # FAT and some network file systems keep mtimes to 2 s
# Files up to this size are kept in memory between hashing and storing (one read); larger new
# files are read a second time by ObjectStore.put_file.
_KEEP_BYTES = 32 << 20


# -- saving -----------------------------------------------------------------------------------


def save_files(
    store: Store, path: str | os.PathLike[str], name: str, *, dvc: bool = False
) -> DatasetVersion:
    """Store the file or folder ``path`` (recursively) as the next version of files dataset
    ``name``; content identical to the latest version writes nothing and returns it. ``dvc``:
    also compute each file's md5 and write a DVC 3 pointer ``<path>.dvc`` next to ``path``."""
    check_name(name)
    source = Path(path).absolute()
    listing = _walk(source, name)
    store.create()
    existing = sql.dataset(store, name)
    if existing is not None and existing["kind"] != "files":
        raise DatasetError(
            f"Dataset {name!r} is a table, not files; save {source} under another name.", name
        )
    latest = sql.latest_version(store, name) if existing else None
    previous = _reusable(store, latest, source)
    started_ns = time.time_ns()
    single = source.is_file()
    new_objects: set[str] = set()
    lock = threading.Lock()

    def one(item: tuple[str, Path, os.stat_result]) -> Row:
        rel, full, st = item
        old = previous.get(rel)
        if old is not None and _unchanged(store, old, st, dvc, single):
            return {k: v for k, v in old.items() if k != "hashed_at_ns"}
        return _store_file(store, name, rel, full, st, dvc, single, new_objects, lock)

    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(listing))) as pool:
        files = list(pool.map(one, listing))

    digest = files[0]["xxh128"] if single else _listing_digest(files)
    if dvc:
        write_dvc_pointer(source, files)
    if latest is not None and digest == latest["fingerprint"]:
        return get_version(store, Reference(name, version=int(latest["version"])))
    manifest = {"source": str(source), "hashed_at_ns": started_ns, "files": files}
    address, _ = store.objects.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    sizes = {f["sha256"]: f["size"] for f in files}
    number = sql.add_version(
        store,
        {
            "name": name,
            "fingerprint": digest,
            "schema": {"source": str(source), "single_file": single},
            "n_rows": len(files),
            "n_bytes": sum(f["size"] for f in files),
            "added_bytes": sum(sizes[d] for d in new_objects),
            "manifest": address,
            "mode": "files",
            "run_id": run_here(store),
            "actor": current_user(),
            "host": hostname(),
            "created_at": time.time(),
        },
        {"kind": "files", "uri": "", "key": None},
    )
    return get_version(store, Reference(name, version=number))


def restore_files(store: Store, name: str, number: int) -> DatasetVersion:
    """A new version of files dataset ``name`` equal to version ``number`` (its manifest again:
    nothing copied, history never rewritten); the objects are checked to be all there."""
    row = resolve_row(store, Reference(check_name(name), version=int(number)))
    if row["kind"] != "files":
        raise DatasetError(
            f"Dataset {name!r} is a table; restore it with nbm.restore_dataset.", name
        )
    missing = [
        f["path"]
        for f in manifest_files(store, row)
        if not store.objects.path_of(f["sha256"]).is_file()
    ]
    if missing:
        raise DatasetError(
            f"Dataset {name!r} version {number}: the stored content of {len(missing)} file(s) "
            f"({', '.join(missing[:5])}) is missing from {store.objects.root}; nothing restored.",
            name,
        )
    fields = ("fingerprint", "schema", "n_rows", "n_bytes", "manifest")
    restored = sql.add_version(
        store,
        {
            **{k: row[k] for k in fields},
            "name": name,
            "added_bytes": 0,
            "mode": "restore",
            "restored_from": int(row["version"]),
            "run_id": run_here(store),
            "actor": current_user(),
            "host": hostname(),
            "created_at": time.time(),
        },
    )
    return get_version(store, Reference(name, version=restored))


def _walk(source: Path, name: str) -> list[tuple[str, Path, os.stat_result]]:
    """Each file under ``source`` (or ``source`` itself): its relative POSIX path, its path, and
    its stat (through symlinks), sorted by relative path."""
    if not source.exists():
        raise DatasetError(
            f"Dataset {name!r}: {source} does not exist; give the path of a file or a folder.",
            name,
        )
    if not source.is_dir():
        return [(source.name, source, _stat(source, name))]

    def refuse(error: OSError) -> None:
        raise DatasetError(
            f"Dataset {name!r}: folder {error.filename} cannot be read ({error.strerror}); "
            "make it readable or leave it out.",
            name,
        ) from error

    found = []
    for root, dirs, names in os.walk(source, onerror=refuse):
        for folder in dirs:
            if os.path.islink(os.path.join(root, folder)):
                raise DatasetError(
                    f"Dataset {name!r}: {os.path.join(root, folder)} is a symlink to a folder; "
                    "nbmlops stores files and symlinks to files only. Replace it with the "
                    "folder, or save that folder as its own dataset.",
                    name,
                )
        for file in names:
            full = Path(root, file)
            found.append((full.relative_to(source).as_posix(), full, _stat(full, name)))
    if not found:
        raise DatasetError(
            f"Dataset {name!r}: folder {source} holds no files; there is nothing to save.", name
        )
    return sorted(found, key=lambda item: item[0])


def _stat(path: Path, name: str) -> os.stat_result:
    try:
        st = path.stat()
    except OSError as exc:  # a dangling symlink, or a folder we may not enter
        raise _unreadable(name, path, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(
            f"Dataset {name!r}: {path} is not a regular file (a device, socket or pipe); "
            "leave it out of the folder.",
            name,
        )
    return st


def _unreadable(name: str, path: Path, exc: OSError) -> DatasetError:
    return DatasetError(
        f"Dataset {name!r}: file {path} cannot be read ({exc.strerror or exc}); make it "
        "readable, or leave it out. Nothing was saved.",
        name,
    )


def _reusable(store: Store, latest: Row | None, source: Path) -> dict[str, Row]:
    """The previous version's entries by path, if it was saved from the same ``source``; each
    holds the ``hashed_at_ns`` of that save for the racy-mtime rule."""
    if latest is None:
        return {}
    manifest = json.loads(store.objects.read_verified(latest["manifest"]))
    if manifest.get("source") != str(source):
        return {}
    hashed_at = int(manifest.get("hashed_at_ns", 0))
    return {f["path"]: {**f, "hashed_at_ns": hashed_at} for f in manifest["files"]}


def _unchanged(store: Store, old: Row, st: os.stat_result, md5: bool, single: bool) -> bool:
    """Whether ``old`` (an entry of the previous manifest) can stand for the file without
    reading it: same size, mtime and inode, hashed well after the mtime, its object present."""
    reusable = (
        old["size"] == st.st_size
        and old.get("mtime_ns") == st.st_mtime_ns
        and old.get("inode") == st.st_ino
        and st.st_mtime_ns < old["hashed_at_ns"] - _RACY_NS
        and (not md5 or "md5" in old)
        and (not single or "xxh128" in old)
        and old.get("mode") == stat.S_IMODE(st.st_mode)
    )
    return reusable and store.objects.path_of(old["sha256"]).is_file()


def _store_file(
    store: Store,
    name: str,
    rel: str,
    full: Path,
    st: os.stat_result,
    md5: bool,
    single: bool,
    new_objects: set[str],
    lock: threading.Lock,
) -> Row:
    """Hash ``full`` in one read and put it in the objects if its content is new there."""
    sha = hashlib.sha256()
    extra = [hashlib.md5(usedforsecurity=False)] if md5 else []
    xxh = xxhash.xxh3_128() if single else None
    kept: list[bytes] | None = [] if st.st_size <= _KEEP_BYTES else None
    size = 0
    try:
        with open(full, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha.update(chunk)
                for hasher in extra:
                    hasher.update(chunk)
                if xxh is not None:
                    xxh.update(chunk)
                if kept is not None:
                    kept.append(chunk)
                size += len(chunk)
    except OSError as exc:
        raise _unreadable(name, full, exc) from exc
    digest = sha.hexdigest()
    with lock:  # one thread stores each new content, and it is counted once
        new = digest not in new_objects and not store.objects.path_of(digest).is_file()
        if new:
            new_objects.add(digest)
    if new:
        if kept is not None:
            store.objects.put_bytes(b"".join(kept))
        elif store.objects.put_file(full)[0] != digest:
            raise DatasetError(
                f"Dataset {name!r}: file {full} changed while it was being saved; save again "
                "once nothing writes to it.",
                name,
            )
    entry: Row = {
        "path": rel,
        "size": size,
        "sha256": digest,
        "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
    }
    if md5:
        entry["md5"] = extra[0].hexdigest()
    if xxh is not None:
        entry["xxh128"] = xxh.hexdigest()
    return entry


def _listing_digest(files: Iterable[Row]) -> str:
    listing = json.dumps([[f["path"], f["sha256"]] for f in files], separators=(",", ":"))
    return fingerprint(listing.encode()).digest


# -- checkout ---------------------------------------------------------------------------------


def checkout_files(
    store: Store, row: Row, to: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write the files of version ``row`` under the folder ``to`` (created if needed), each
    checked against its sha256 as it is copied, with its recorded mode. A file already there
    with the same content is left as it is; one with other content is overwritten only with
    ``force``, and nothing is written if any would be without it. Returns ``to``."""
    ref = f"{row['name']}@{row['version']}"
    if row["kind"] != "files":
        raise DatasetError(
            f"Dataset {ref} is a table; read it with nbm.load_dataset({ref!r}).", row["name"]
        )
    target = Path(to)
    if target.exists() and not target.is_dir():
        raise DatasetError(
            f"Dataset {ref}: checkout target {target} is a file; give a folder (it is "
            "created if it does not exist).",
            row["name"],
        )
    files = manifest_files(store, row)
    places = [(entry, _inside(target, entry["path"], ref, row["name"])) for entry in files]
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(places))) as pool:
        states = list(pool.map(lambda p: _state(p[1], p[0]), places))
    blocked = [str(dest) for (_, dest), s in zip(places, states, strict=True) if s == "blocked"]
    different = [str(d) for (_, d), s in zip(places, states, strict=True) if s == "different"]
    if blocked or (different and not force):
        shown = (blocked or different)[:5]
        more = len(blocked or different) - len(shown)
        raise DatasetError(
            f"Dataset {ref}: {len(blocked or different)} file(s) under {target} "
            + (
                "are folders, or lie in a path where a file takes a folder's place"
                if blocked
                else "exist with other content"
            )
            + f" ({', '.join(shown)}{f' and {more} more' if more else ''}). Nothing was "
            "written; "
            + ("move them away." if blocked else "check out elsewhere, or pass force=True."),
            row["name"],
        )
    todo = [p for p, s in zip(places, states, strict=True) if s != "same"]
    with ThreadPoolExecutor(max_workers=min(_WORKERS, max(1, len(todo)))) as pool:
        list(pool.map(lambda p: _copy_verified(store, p[0], p[1], ref, row["name"]), todo))
    for entry, dest in places:
        if "mode" in entry:
            os.chmod(dest, entry["mode"])
    return target


def _inside(target: Path, rel: str, ref: str, name: str) -> Path:
    """``target / rel``, refusing a manifest path that would leave ``target``."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise DatasetError(
            f"Dataset {ref}: its manifest lists {rel!r}, which is not a path inside a "
            "folder; the store's records are damaged.",
            name,
        )
    return target.joinpath(*parts)


def _state(dest: Path, entry: Row) -> str:
    """'absent', 'same', 'different', or 'blocked' (a folder in the way)."""
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                return "blocked"
            break
    if not dest.exists():
        return "absent"
    if dest.is_dir():
        return "blocked"
    if dest.stat().st_size != entry["size"]:
        return "different"
    sha = hashlib.sha256()
    with open(dest, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return "same" if sha.hexdigest() == entry["sha256"] else "different"


def _copy_verified(store: Store, entry: Row, dest: Path, ref: str, name: str) -> None:
    """Copy one object to ``dest`` through a temporary file, renamed only once its sha256
    matched: a damaged object never lands under the file's name."""
    source = store.objects.path_of(entry["sha256"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".nbmlops-")
    try:
        sha = hashlib.sha256()
        try:
            reader = open(source, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise DatasetError(
                f"Dataset {ref}: the stored content of {entry['path']} (sha256 "
                f"{entry['sha256']}) is missing from {store.objects.root}; the store was copied "
                "without its objects/ folder, or the object was deleted.",
                name,
            ) from None
        with reader, os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                sha.update(chunk)
                writer.write(chunk)
        if sha.hexdigest() != entry["sha256"]:
            raise ArtifactIntegrityError(entry["sha256"], sha.hexdigest(), source)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- diff -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDiff:
    """What changed between two versions of a files dataset, file by file (by content: a file
    whose bytes are the same is unchanged whatever its mtime)."""

    old_ref: str
    new_ref: str
    added: list[tuple[str, int]] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)
    changed: list[tuple[str, int, int]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def summary(self) -> str:
        grown = (
            sum(s for _, s in self.added)
            - sum(s for _, s in self.removed)
            + sum(n - o for _, o, n in self.changed)
        )
        return (
            f"{self.old_ref} -> {self.new_ref}: {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.changed)} changed, "
            f"{self.unchanged} unchanged ({grown:+,} bytes)"
        )

    def __str__(self) -> str:
        return self.summary

    def to_frame(self) -> pd.DataFrame:
        """One row per file that differs: path, change, old_size, new_size (None where the
        file is absent), sorted by path."""
        import pandas as pd

        rows = (
            [(p, "added", None, s) for p, s in self.added]
            + [(p, "removed", s, None) for p, s in self.removed]
            + [(p, "changed", o, n) for p, o, n in self.changed]
        )
        frame = pd.DataFrame(sorted(rows), columns=["path", "change", "old_size", "new_size"])
        return frame.astype({"old_size": "Int64", "new_size": "Int64"})

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(self.summary)}</p>" + self.to_frame().to_html(index=False)


def diff_files(store: Store, old_row: Row, new_row: Row) -> FileDiff:
    """The files added, removed and changed from version ``old_row`` to ``new_row``."""
    old = {f["path"]: f for f in manifest_files(store, old_row)}
    new = {f["path"]: f for f in manifest_files(store, new_row)}
    common = old.keys() & new.keys()
    changed = sorted(
        (p, old[p]["size"], new[p]["size"]) for p in common if old[p]["sha256"] != new[p]["sha256"]
    )
    return FileDiff(
        old_ref=f"{old_row['name']}@{old_row['version']}",
        new_ref=f"{new_row['name']}@{new_row['version']}",
        added=sorted((p, new[p]["size"]) for p in new.keys() - old.keys()),
        removed=sorted((p, old[p]["size"]) for p in old.keys() - new.keys()),
        changed=changed,
        unchanged=len(common) - len(changed),
    )


# -- DVC pointers -----------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}


def write_dvc_pointer(path: str | os.PathLike[str], files: list[Row]) -> Path:
    """Write ``<path>.dvc`` next to ``path`` as DVC 3's ``dvc add`` would, from the manifest
    entries of its files (each with ``md5``); return the pointer's path.

    A file's pointer holds its md5 and size. A folder's holds the md5 of DVC's listing of it
    plus ``.dir``: the md5 of ``json.dumps(sorted([{"md5", "relpath"}], by relpath),
    sort_keys=True)`` (``dvc_data.hashfile.tree.Tree.digest``), its total size and ``nfiles``.
    DVC leaves ``.git``, ``.hg``, ``.dvc`` and ``.dvcignore`` matches out of a folder; a folder
    holding those gets a pointer DVC reports as changed. The data path is not added to
    ``.gitignore`` (``dvc add`` does that).
    """
    source = Path(path)
    missing = [f["path"] for f in files if "md5" not in f]
    if missing:
        raise DatasetError(
            f"No md5 recorded for {', '.join(missing[:5])}: a DVC pointer needs the md5 of "
            "each file; save the files with dvc=True (--dvc).",
        )
    size = sum(int(f["size"]) for f in files)
    if source.is_dir():
        listing = sorted(({"md5": f["md5"], "relpath": f["path"]} for f in files), key=_relpath)
        digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode(), usedforsecurity=False)
        lines = [f"- md5: {digest.hexdigest()}.dir", f"  size: {size}", f"  nfiles: {len(files)}"]
    else:
        lines = [f"- md5: {files[0]['md5']}", f"  size: {size}"]
    name = source.absolute().name
    quoted = name if _PLAIN.fullmatch(name) and name.lower() not in _YAML_WORDS else None
    lines += ["  hash: md5", f"  path: {quoted or json.dumps(name)}"]
    pointer = source.absolute().with_name(name + ".dvc")
    pointer.write_text("outs:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return pointer


def _relpath(entry: dict[str, Any]) -> str:
    return str(entry["relpath"])
