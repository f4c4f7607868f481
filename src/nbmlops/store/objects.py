"""Content-addressed blobs under ``.nbmlops/objects/``: each stored once, by its sha256.

The sha256 is the address. A blob can also be verified by BLAKE3 digests recorded in the
database at model registration: of the whole blob (``object_digests``), which this CPU computes
about three times faster than sha256, and of each fixed-size chunk of it (``object_chunks``),
which lets :meth:`ObjectStore.open_verified` hand out each chunk as soon as that chunk is
verified, while the next one is being hashed. All are cryptographic, so any of them recorded in
the database proves that the bytes read are the bytes recorded (issue #5, the model-load
target).
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from nbmlops.errors import ArtifactIntegrityError, NotFoundError, StoreError, StoreReadOnlyError

_CHUNK = 1 << 20
# Below this size BLAKE3's thread pool costs more than it saves. In isolation the pool is ahead
# from 256 KiB on the 2-core VM of benchmarks/README.md, but not between other work: loading a
# 1.3 MB model, hashing it took 0.53-0.59 ms with the pool (its threads sleep between loads and
# must be woken) and 0.39 ms on one thread.
_BLAKE3_THREADS_FROM = 4 << 20
# Chunk digests (object_chunks): an object is cut into at most CHUNKS chunks of a power-of-two
# size, at least MIN_CHUNK_SIZE. Few chunks, because each one costs a handover between the thread
# that hashes and the one that unpickles (a thread wake-up or two: ~0.1-0.3 ms on the shared
# 2-core VM of benchmarks/README.md, at times several ms); large enough, because chunk 0 is
# hashed before unpickling can start. Measured there: with 256 KiB or 512 KiB chunks a 1.3 MB
# forest loaded slower than hashed whole first, with 1 MiB chunks no faster; a 26 MB forest in 7
# chunks of 4 MiB loads in unpickling's time plus 7-15 ms (chunk 0 and the handovers), ~10% faster
# than whole where that path keeps its pages. Each object keeps the chunk size it was recorded
# with, so this can change without a migration.
MIN_CHUNK_SIZE = 1 << 20
CHUNKS = 8
DIGEST_BYTES: Final = 32


def blake3_hex(data: bytes | memoryview) -> str:
    """The BLAKE3-256 digest of ``data`` in hex (threads for large inputs)."""
    from blake3 import blake3

    threads = blake3.AUTO if len(data) >= _BLAKE3_THREADS_FROM else 1
    return str(blake3(data, max_threads=threads).hexdigest())


@dataclass(frozen=True)
class ChunkDigests:
    """The BLAKE3-256 digest of each ``chunk_size`` bytes of an object of ``size`` bytes, in
    order (the last chunk holds the rest), concatenated: ``digests`` has 32 bytes per chunk."""

    chunk_size: int
    size: int
    digests: bytes

    def __post_init__(self) -> None:
        if self.chunk_size <= 0 or self.size < 0 or len(self.digests) != DIGEST_BYTES * self.count:
            raise StoreError(
                f"Chunk digests of {len(self.digests)} bytes do not fit a {self.size}-byte object "
                f"in {self.chunk_size}-byte chunks (32 bytes per chunk): the store's records are "
                "damaged. Restore the store's database from a backup."
            )

    @property
    def count(self) -> int:
        """The number of chunks: the size divided by the chunk size, rounded up."""
        return -(-self.size // self.chunk_size) if self.chunk_size > 0 else 0

    def digest(self, index: int) -> bytes:
        return self.digests[DIGEST_BYTES * index : DIGEST_BYTES * (index + 1)]

    @classmethod
    def of(cls, data: bytes | memoryview, chunk_size: int | None = None) -> ChunkDigests:
        """The chunk digests of ``data`` in chunks of ``chunk_size`` (default:
        :func:`chunk_size_for` its size)."""
        from blake3 import blake3

        chunk_size = chunk_size or chunk_size_for(len(data))
        view = memoryview(data)
        digests = b"".join(
            blake3(view[start : start + chunk_size]).digest()
            for start in range(0, len(view), chunk_size)
        )
        return cls(chunk_size, len(view), digests)


def chunk_size_for(size: int) -> int:
    """The chunk size recorded for a new object of ``size`` bytes: the smallest power of two
    that cuts it into at most :data:`CHUNKS` chunks, and at least :data:`MIN_CHUNK_SIZE`."""
    chunk = MIN_CHUNK_SIZE
    while chunk * CHUNKS < size:
        chunk *= 2
    return chunk


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
        if not target.is_file():
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
        if not target.is_file():
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
            raise self._missing(digest) from None
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc
        if blake3 is not None:
            if blake3_hex(data) == blake3:
                return data
            error = self._mismatch(digest, path, data, f"BLAKE3 digest {blake3}", "object_digests")
            error.add_note(f"Detected by its BLAKE3 digest (expected {blake3}).")
            raise error
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactIntegrityError(digest, actual, path)
        return data

    def open_verified(self, digest: str, chunks: ChunkDigests) -> VerifiedStream:
        """A read-only file object over a blob that returns only bytes of chunks whose BLAKE3
        digest matched ``chunks`` (recorded in the database from the same bytes).

        The first chunk is read and checked here; a reader thread reads and checks the others
        one by one while the caller consumes the chunks already verified (e.g. unpickles them),
        so hashing overlaps deserialising. No byte is returned before its whole chunk matched.
        A first chunk that does not match, or a blob whose size is not the recorded one, raises
        :class:`ArtifactIntegrityError` here (:class:`StoreError` when the blob still matches
        its sha256 and the database's digests are what changed); a later chunk that does not
        match (or a size that changes while reading) makes the read that reaches it raise.
        Call :meth:`VerifiedStream.finish` before trusting what was built from the stream: it
        raises the same way if a chunk the caller did not read fails.
        """
        from blake3 import blake3

        path = self.path_of(digest)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed here or by the reader thread
        except FileNotFoundError:
            raise self._missing(digest) from None
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc
        stream = VerifiedStream()
        handed_over = False
        try:
            found = os.fstat(file.fileno()).st_size
            if found != chunks.size:  # checked again while reading, in case it changes
                raise self._length_error(digest, path, chunks, found)
            first = file.read(chunks.chunk_size)
            if len(first) != min(chunks.chunk_size, chunks.size):
                raise self._length_error(digest, path, chunks, len(first))
            if chunks.count > 1:
                # The reader starts on chunk 1 while this thread hashes chunk 0.
                _readers.submit(lambda: self._read_chunks(file, digest, path, chunks, stream))
                handed_over = True
            # One thread: the reader is busy on the other core.
            if chunks.count and blake3(first).digest() != chunks.digest(0):
                stream.close()
                raise self._chunk_error(digest, path, chunks, 0)
            if chunks.count <= 1:
                extra = file.read(1)
                if extra:
                    raise self._length_error(digest, path, chunks, chunks.size + len(extra))
                stream._put(None)
            stream._view = memoryview(first)
        except OSError as exc:
            raise self._unreadable(digest, path, exc) from exc
        finally:
            if not handed_over:
                file.close()
        return stream

    def _read_chunks(
        self, file: BinaryIO, digest: str, path: Path, chunks: ChunkDigests, out: VerifiedStream
    ) -> None:
        # Runs in a reader thread, from chunk 1 on. Reading and hashing release the GIL, but
        # this thread needs it back after each, and gets it only when the consumer waits for a
        # chunk. So the next chunk is read before this one is handed over (the read runs while
        # the consumer waits), and the hash that follows the handover runs while the consumer
        # works on the chunk just handed over: hashing, the larger cost, is what overlaps.
        from blake3 import blake3

        try:
            with file:
                step, size, last = chunks.chunk_size, chunks.size, chunks.count - 1
                chunk = file.read(step)
                for index in range(1, chunks.count):
                    if out._cancelled:
                        return
                    start = index * step
                    if len(chunk) != min(step, size - start):
                        out._put(self._length_error(digest, path, chunks, start + len(chunk)))
                        return
                    if blake3(chunk).digest() != chunks.digest(index):
                        out._put(self._chunk_error(digest, path, chunks, index))
                        return
                    following = file.read(step if index < last else 1)  # 1: is there more?
                    out._put(chunk)
                    chunk = following
                if chunk:
                    out._put(self._length_error(digest, path, chunks, size + len(chunk)))
                    return
            out._put(None)
        except OSError as exc:  # handed to the consumer, which raises it
            error = self._unreadable(digest, path, exc)
            error.__cause__ = exc
            out._put(error)
        except BaseException as exc:
            out._put(exc)

    def _chunk_error(
        self, digest: str, path: Path, chunks: ChunkDigests, index: int
    ) -> StoreError | ArtifactIntegrityError:
        data = _read_again(path)
        if isinstance(data, StoreError):
            return data
        start = index * chunks.chunk_size
        end = min(start + chunks.chunk_size, chunks.size)
        error = self._mismatch(
            digest, path, data, f"BLAKE3 digest of bytes {start}-{end}", "object_chunks"
        )
        error.add_note(
            f"Detected by the BLAKE3 digest of its chunk {index} (bytes {start} to {end}, "
            f"expected {chunks.digest(index).hex()}); no byte of that chunk or after it was "
            "handed out."
        )
        return error

    def _length_error(
        self, digest: str, path: Path, chunks: ChunkDigests, found: int
    ) -> StoreError | ArtifactIntegrityError:
        data = _read_again(path)
        if isinstance(data, StoreError):
            return data
        what = "longer" if found > chunks.size else "shorter"
        error = self._mismatch(digest, path, data, f"size {chunks.size}", "object_chunks")
        error.add_note(
            f"Detected by its size: {what} than the {chunks.size} bytes recorded; no byte past "
            "the last verified chunk was handed out."
        )
        return error

    def _mismatch(
        self, digest: str, path: Path, data: bytes, recorded: str, table: str
    ) -> StoreError | ArtifactIntegrityError:
        """The error for a blob that does not match a digest recorded in ``table``: the file
        changed (ArtifactIntegrityError), unless it still matches its sha256 (the records
        disagree, StoreError)."""
        actual = hashlib.sha256(data).hexdigest()
        if actual == digest:
            return StoreError(
                f"Stored object {path} matches its sha256 {digest} but not the {recorded} "
                f"recorded for it in {table}: the store's records disagree (the database was "
                "edited), so the object was not used. Restore the store's database from a backup.",
                path,
            )
        return ArtifactIntegrityError(digest, actual, path)

    def _missing(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"Stored object {digest} is missing from {self.root}; it was deleted or the "
            "store was copied without its objects/ folder."
        )

    def _unreadable(self, digest: str, path: Path, exc: OSError) -> StoreError:
        """The error for an object whose file is there but cannot be read (a folder in its
        place, no permission, an I/O error): what is wrong with it, and how to get it back."""
        what = (
            "is a folder, not a file"
            if isinstance(exc, IsADirectoryError)
            else f"cannot be read ({exc.strerror or exc})"
        )
        return StoreError(
            f"Stored object {digest} at {path} {what}, so it was not used. Something outside "
            f"nbmlops changed {self.root}: restore that file from a backup or another copy of "
            "the store (or make it readable), or log or register the object again.",
            path,
        )

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
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StoreReadOnlyError(
                    f"Could not write an object to {target.parent}: the store's "
                    f"objects folder is read-only ({exc.strerror}). Make it writable, or record "
                    "into another store (store=, --store or NBMLOPS_HOME).",
                    target,
                ) from exc
            raise StoreError(f"Could not write object to {target.parent}: {exc}", target) from exc


class VerifiedStream:
    """A read-only binary file over one stored object that only ever returns bytes of chunks
    already verified against the chunk digests recorded in the database (see
    :meth:`ObjectStore.open_verified`, which makes it).

    ``read``, ``readinto`` and ``readline`` are what :class:`pickle.Unpickler` uses. ``read``
    returns a zero-copy ``memoryview`` of a verified chunk when the bytes asked for lie in one
    chunk (the C unpickler accepts any buffer), else ``bytes``. A read that reaches a chunk that
    failed verification, or the end of a blob of the wrong size, raises the integrity error
    instead, every time it is retried.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[bytes | memoryview | BaseException | None] = (
            queue.SimpleQueue()
        )
        self._view = memoryview(b"")  # the current verified chunk
        self._pos = 0
        self._start = 0  # bytes handed out before the current chunk
        self._ended = False
        self._error: BaseException | None = None
        self._cancelled = False

    # -- reader side (the reader thread) ---------------------------------------------------

    def _put(self, item: bytes | memoryview | BaseException | None) -> None:
        """Hand over a verified chunk, an error, or None for "every chunk verified"."""
        self._queue.put(item)

    # -- consumer side -----------------------------------------------------------------------

    def _next(self) -> bool:
        """Wait for the next verified chunk; False once every chunk was verified and read."""
        if self._error is not None:
            raise self._error
        if self._ended:
            return False
        item = self._queue.get()
        if item is None:
            self._ended = True
            return False
        if isinstance(item, BaseException):
            self._error = item
            raise item
        self._start += self._pos
        self._view, self._pos = memoryview(item), 0
        return True

    @property
    def delivered(self) -> int:
        """How many bytes the reads returned so far (all of them verified)."""
        return self._start + self._pos

    def read(self, size: int | None = -1) -> bytes | memoryview:
        view, pos = self._view, self._pos
        if size is not None and 0 <= size <= len(view) - pos:
            self._pos = pos + size
            return view[pos : pos + size]
        parts = [view[pos:]]
        self._pos = len(view)
        missing = -1 if size is None or size < 0 else size - len(parts[0])
        while missing != 0 and self._next():
            take = len(self._view) if missing < 0 else min(missing, len(self._view))
            parts.append(self._view[:take])
            self._pos = take
            missing = missing - take if missing > 0 else missing
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        target = memoryview(buffer).cast("B")
        done = 0
        while done < len(target):
            available = len(self._view) - self._pos
            if available == 0:
                if not self._next():
                    break
                continue
            take = min(available, len(target) - done)
            target[done : done + take] = self._view[self._pos : self._pos + take]
            self._pos += take
            done += take
        return done

    def readline(self, size: int | None = -1) -> bytes:
        # Only pickles of protocol 3 or less call this (for text opcodes); lines are short,
        # so the search copies a small window at a time.
        parts: list[bytes] = []
        limit = -1 if size is None or size < 0 else size
        while limit != 0:
            if self._pos == len(self._view) and not self._next():
                break
            window = bytes(self._view[self._pos : self._pos + (256 if limit < 0 else limit)])
            newline = window.find(b"\n")
            piece = window if newline < 0 else window[: newline + 1]
            parts.append(piece)
            self._pos += len(piece)
            limit = limit - len(piece) if limit > 0 else limit
            if newline >= 0:
                break
        return b"".join(parts)

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        """Wait until the reader has verified every chunk and the end of the blob; raise the
        integrity error if one failed. Chunks not read yet are skipped (verified, not used)."""
        while self._next():
            pass

    def close(self) -> None:
        """Stop the reader at its next chunk; reads return nothing more."""
        self._cancelled = True
        self._start += self._pos
        self._view, self._pos = memoryview(b""), 0
        self._ended = True

    def __enter__(self) -> VerifiedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReaderThreads:
    """Threads that run chunk readers, kept idle between loads: starting a thread costs ~0.1 ms
    on a busy 2-core machine, a tenth of loading a 1.3 MB model. A load takes an idle thread or
    starts one, so concurrent loads never wait for each other; at most ``_KEEP`` stay idle."""

    _KEEP = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._serve, args=(inbox,), name="nbmlops-verify", daemon=True
            )
            thread.start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()  # a job hands its own errors to its stream
            with self._lock:
                if len(self._idle) >= self._KEEP:
                    return
                self._idle.append(inbox)

    def _after_fork(self) -> None:
        # A forked child has none of its parent's threads, and maybe a lock held by one of them.
        self._lock = threading.Lock()
        self._idle = []


_readers = _ReaderThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_readers._after_fork)


def _read_again(path: Path) -> bytes | StoreError:
    """A blob's bytes read once more, to say exactly what is wrong with it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        return StoreError(f"Stored object {path} could not be read again: {exc}", path)
