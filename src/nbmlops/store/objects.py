"""Content-addressed blobs under ``.nbmlops/objects/``: each stored once, by its sha256.

The sha256 is the address. A blob can also be verified by its BLAKE3 digest (recorded in the
database's ``object_digests`` table at model registration), which this CPU computes about three
times faster than sha256; both are cryptographic, so either one recorded in the database proves
that the bytes read are the bytes recorded (issue #5, the model-load target).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nbmlops.errors import ArtifactIntegrityError, NotFoundError, StoreError

_CHUNK = 1 << 20
# Below this size BLAKE3's thread pool costs more than it saves (measured on a 2-core VM: one
# thread ~3.2 GB/s up to 1 MB, the pool ahead only from ~4 MB, ~5 GB/s at 64 MB).
_BLAKE3_THREADS_FROM = 4 << 20


def blake3_hex(data: bytes | memoryview) -> str:
    """The BLAKE3-256 digest of ``data`` in hex (threads for large inputs)."""
    from blake3 import blake3

    threads = blake3.AUTO if len(data) >= _BLAKE3_THREADS_FROM else 1
    return str(blake3(data, max_threads=threads).hexdigest())


class ObjectStore:
    """Blobs named by their sha256, in a two-level fan-out (``ab/cdef...``) like git."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put_bytes(self, data: bytes | memoryview) -> tuple[str, int]:
        """Store ``data``; return its sha256 and size. Storing the same content twice is free."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if not target.exists():
            self._write_atomically(target, [data])
        return digest, len(data)

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a file into the store, hashing while reading it once."""
        hasher = hashlib.sha256()
        chunks: list[bytes] = []
        with open(source, "rb") as f:
            while chunk := f.read(_CHUNK):
                hasher.update(chunk)
                chunks.append(chunk)
        digest = hasher.hexdigest()
        target = self.path_of(digest)
        if not target.exists():
            self._write_atomically(target, chunks)
        return digest, sum(len(c) for c in chunks)

    def read_verified(self, digest: str, *, blake3: str | None = None) -> bytes:
        """Return a blob's bytes after checking them against ``digest`` (its sha256), or against
        ``blake3`` when that is given (its BLAKE3 digest, recorded from the same bytes); never a
        changed blob. The bytes returned are the bytes checked: callers deserialise them, not
        the file again."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"Stored object {digest} is missing from {self.root}; it was deleted or the "
                "store was copied without its objects/ folder."
            ) from None
        if blake3 is not None:
            if blake3_hex(data) == blake3:
                return data
            actual = hashlib.sha256(data).hexdigest()
            if actual == digest:
                raise StoreError(
                    f"Stored object {path} matches its sha256 {digest} but not the BLAKE3 digest "
                    f"{blake3} recorded for it in object_digests: the store's records disagree "
                    "(the database was edited), so the object was not used. Restore the store's "
                    "database from a backup.",
                    path,
                )
            error = ArtifactIntegrityError(digest, actual, path)
            error.add_note(f"Detected by its BLAKE3 digest (expected {blake3}).")
            raise error
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactIntegrityError(digest, actual, path)
        return data

    def _write_atomically(
        self, target: Path, chunks: list[bytes] | list[bytes | memoryview]
    ) -> None:
        # Write to a temporary file then rename, so a crash or a full disk never leaves a
        # truncated blob under a valid name.
        import tempfile

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    for chunk in chunks:
                        f.write(chunk)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"Could not write object to {target.parent}: {exc}", target) from exc
