"""Content-addressed blobs under ``.nbmlops/objects/``: each stored once, by its sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nbmlops.errors import ArtifactIntegrityError, NotFoundError, StoreError

_CHUNK = 1 << 20


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

    def read_verified(self, digest: str) -> bytes:
        """Return a blob's bytes after checking them against ``digest``; never a changed blob."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"Stored object {digest} is missing from {self.root}; it was deleted or the "
                "store was copied without its objects/ folder."
            ) from None
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
