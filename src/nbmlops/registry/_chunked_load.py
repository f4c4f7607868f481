"""Speed-tuned: unpickling a large pickle chunk by chunk while the next chunks are verified.

A reader thread reads the artifact in fixed-size chunks and compares each chunk's BLAKE3 digest
with the one recorded in ``object_chunks``, while the loading thread unpickles the chunks already
verified, so hashing overlaps unpickling on two cores. The unpickler reads from a
:class:`~nbmlops.store.objects.VerifiedStream`, which only ever returns bytes of chunks that
matched: no byte that failed verification is ever deserialised.

The trade-off: when chunk *k* fails (or the file is shorter or longer than recorded), chunks
before it may already have been unpickled. Those bytes are authentic (each is exactly what was
registered, so unpickling them does only what loading the registered model does), but the load
as a whole still raises ``ArtifactIntegrityError``, the objects built so far are discarded, and
the model is never returned. A load returns only after every chunk and the file's exact length
have been verified.

Measurements (benchmarks/README.md, ``bench_registry.py``; AMD EPYC VM, 2 cores, 2026-11-26):

* A 26.3 MB forest (seven 4 MiB chunks) loads in 18.2-26.5 ms (0.99-1.45 GB/s) this way,
  against 75-89 ms (0.30-0.35 GB/s) through the whole-file path; unpickling alone takes
  11.4-18.1 ms, the reader's work alone (read + BLAKE3 per chunk) 11.7-13.7 ms.
* Below ``MIN_CHUNKS`` it does not pay: each handover between the threads (a wake-up, ~35-100
  µs, at times milliseconds) costs about what hashing a chunk of a small artifact saves. A
  1.32 MB forest: 256 KiB chunks 1.97 ms against 1.42 ms whole, 1 MiB chunks 1.45-1.58 ms
  against 1.42-1.56 ms.
* Tried and not kept: a shorter GIL switch interval, disabling the cyclic garbage collector
  while unpickling (no clear change).
"""

from __future__ import annotations

from typing import Any

from nbmlops.errors import ArtifactIntegrityError, StoreError
from nbmlops.registry import serialization
from nbmlops.registry.model_version import ModelVersion
from nbmlops.store.objects import VerifiedStream

MIN_CHUNKS = 3
"""Pickles of fewer chunks load whole (see the measurements above)."""


def applies(mv: ModelVersion) -> bool:
    """Whether ``mv`` loads chunk by chunk: a pickle of at least ``MIN_CHUNKS`` chunks with
    chunk digests (skops archives load whole: a zip is read from its end)."""
    return (
        mv.format == serialization.PICKLE
        and mv.chunks is not None
        and mv.chunks.count >= MIN_CHUNKS
    )


def unpickle(mv: ModelVersion, stream: VerifiedStream) -> Any:
    """Unpickle from ``stream`` (verified chunks only), then wait until the rest of the artifact
    and its length are verified too: a model is returned only if the whole artifact matched."""
    try:
        model = serialization.unpickle_stream(stream)
    except Exception:
        # The artifact failing verification further on explains a failure better: raise that.
        _finish(mv, stream)
        raise
    _finish(mv, stream)
    return model


def _finish(mv: ModelVersion, stream: VerifiedStream) -> None:
    try:
        stream.finish()
    except (ArtifactIntegrityError, StoreError) as exc:
        if stream.delivered == 0:
            exc.add_note(f"Model {mv.ref}: nothing was deserialised.")
        else:
            exc.add_note(
                f"Model {mv.ref}: the unpickler had received the first {stream.delivered} bytes, "
                "all from chunks whose BLAKE3 digest matched the one recorded at registration "
                "(authentic bytes); no byte that failed verification was deserialised. The load "
                "failed and the objects built so far were discarded."
            )
        raise
