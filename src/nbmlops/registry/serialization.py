"""Turning a model into bytes and back: skops where it is safe, pickle otherwise.

Trust model (the README's "Registered models and trust" section says the same):

* A pickle is code: unpickling runs whatever the file says. nbmlops hands a model artifact's
  bytes to the unpickler only after they matched a digest recorded in the database when it was
  logged or registered (its sha256 or BLAKE3, or the BLAKE3 of the chunk holding them, see
  :mod:`nbmlops.registry.loading`), so what runs is exactly what you (or whoever wrote to this
  store) saved. A store from someone else is as trusted as its author; the hash check protects
  against later changes, not against a malicious author.
* skops' format is data, not code. It is used when skops can save the model *and* load it back
  with skops' default trusted types (linear models, pipelines of scalers and encoders...). Tree
  models (``sklearn.tree._tree.Tree``, the histogram-gradient-boosting predictor) are not in that
  set in skops 0.16 because a crafted file can make ``predict`` read out of bounds, so they stay
  pickles: still hash-verified, and loading them is no faster or slower than before.
* **What the digests do not stop: a writer of the database.** Every digest (the sha256 that
  names the object, ``object_digests``, ``object_chunks``) is recorded in ``nbmlops.db``, so the
  checks catch a changed, truncated or swapped file in ``objects/``, not someone who can write
  the database. Such a writer (dropping the append-only triggers first) can point a version at
  any object in ``objects/`` (a pickle they logged as a run's artifact, say) by editing
  ``model_versions.sha256``, and ``load_model`` with ``allow_pickle=True`` unpickles it; can
  edit metrics, aliases and the event history; and, with write access to ``objects/`` too, can
  put bytes of their choosing in a version's file and edit the digests to match. A whole-file
  load checks both the BLAKE3 record and the sha256 (the content address), so editing
  ``object_digests`` alone is refused (issue #13 item 17: it used to run the pickle); the
  writer must also rewrite ``model_versions.sha256`` and move the file to the new address. A
  chunked load (pickles of three chunks or more, :mod:`nbmlops.registry._chunked_load`)
  unpickles each chunk once its ``object_chunks`` digest matched, so edited chunk records
  get their bytes unpickled: checking the sha256 too would mean hashing the whole file before
  unpickling (the 26.3 MB forest: ~19 ms more at 1.4 GB/s on a load of 18-26 ms), for a barrier
  the same writer passes with one more UPDATE. Write access to a store is therefore code
  execution for whoever loads its pickles: share stores read-only, and load with
  ``allow_pickle=False`` (skops artifacts only) where the store's writers are not trusted.
* skops output is made byte-for-byte reproducible here (see :func:`canonical_skops`), so the same
  model always gets the same sha256 and registering it twice returns the first version.

Nothing in this module touches the store; :mod:`nbmlops.registry.loading` verifies hashes first.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import pickle
import pickletools
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from nbmlops.capture import model_formats
from nbmlops.errors import RegistryError
from nbmlops.store.objects import VerifiedStream

SKOPS = "skops"
PICKLE = "pickle"
# XGBoost's UBJSON, LightGBM's model text, a PyTorch state_dict (safetensors or torch.save): data,
# written and read by the library itself (nbmlops.capture.model_formats); a run logs models in
# them, and they are registered as logged.
FORMATS = (SKOPS, PICKLE, *model_formats.FORMATS)
PICKLE_PROTOCOL = 5

# Top-level modules whose classes skops may trust by default; anything else (a user's own class,
# xgboost, torch) is never trusted by skops, so trying it would only waste time.
_SKOPS_MODULES = frozenset(
    {"sklearn", "numpy", "scipy", "builtins", "copyreg", "_codecs", "collections", "functools"}
)
# Types skops 0.16 does not trust by default (skops.io.exceptions.UNTRUSTED_TYPE_REASONS, and the
# compiled neighbour trees and distance metrics get_untrusted_types reports): known here so that
# deciding "pickle" for them costs no import of skops.
_SKOPS_REFUSES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
_SKOPS_REFUSED_MODULES = (
    "sklearn.neighbors._kd_tree.",
    "sklearn.neighbors._ball_tree.",
    "sklearn.metrics._dist_metrics.",
)
# Import names whose distribution is named differently (the rest: lower case, '_' -> '-').
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "dateutil": "python-dateutil",
}
_NOT_LIBRARIES = frozenset({"builtins", "copyreg", "_codecs", "__main__"})


def dump_model(model: object, *, format: str = "auto") -> tuple[bytes, str]:
    """Serialise ``model``: ``(data, format)``, format one of :data:`FORMATS`.

    ``format="auto"`` uses the library's portable format for an XGBoost or LightGBM booster or a
    PyTorch module (:mod:`nbmlops.capture.model_formats`); else skops when skops saves the model,
    loads it back with its default trusted types only, and the loaded model has the same state;
    else pickle
    (protocol 5). ``"skops"`` or a portable format raises if that is not possible; ``"pickle"``
    always pickles.
    """
    _check_format(format, allow_auto=True)
    portable = model_formats.chosen_format(model, format)
    if portable is not None:
        return model_formats.dump_portable(model, portable), portable
    if format in model_formats.FORMATS:
        raise RegistryError(
            f"A {type(model).__qualname__} cannot be saved as {format}, which holds "
            f"{model_formats.HOLDS[format]} only; leave format= out to pick the model's own "
            "format."
        )
    pickled = pickle.dumps(model, protocol=PICKLE_PROTOCOL)
    if format == PICKLE:
        return pickled, PICKLE
    converted = to_skops(model, pickled, pickle_globals(pickled))
    if converted is not None:
        return converted, SKOPS
    if format == SKOPS:
        raise RegistryError(
            f"A {type(model).__qualname__} cannot be saved in skops' format so that it loads "
            "with skops' default trusted types; register it with format='pickle' (loading it "
            "then relies on the hash check, see the README's trust model)."
        )
    return pickled, PICKLE


def load_model_bytes(
    data: bytes,
    format: str,
    *,
    trusted: Sequence[str] | None = None,
    model_class: str | None = None,
) -> Any:
    """Deserialise bytes made by :func:`dump_model` or logged by a run. Call it only on
    hash-verified bytes.

    ``trusted`` adds type names to skops' default trusted set (e.g. ``["sklearn.tree._tree.Tree"]``)
    and has no effect on pickles, which are trusted because their hash matched. ``model_class``
    (the version's recorded class) picks the XGBoost wrapper an ``xgboost-ubj`` artifact is
    loaded into; without it the artifact's own marker does.
    """
    _check_format(format, allow_auto=False)
    if format == PICKLE:
        return pickle.loads(data)
    if format in model_formats.FORMATS:
        return model_formats.load_portable(data, format, model_class)
    import skops.io as sio  # takes seconds (it lists every scikit-learn estimator): on use only
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.loads(data, trusted=list(trusted) if trusted else None)
    except UntrustedTypesFoundException as exc:
        raise RegistryError(
            f"{exc} Pass trusted=[...] to load_model with the types you have reviewed."
        ) from exc


def unpickle_stream(stream: VerifiedStream) -> Any:
    """Unpickle from a stream that only returns hash-verified bytes (see
    :meth:`nbmlops.store.objects.ObjectStore.open_verified`). The caller must still call
    ``stream.finish()`` before using the result: the rest of the artifact may not match."""
    # Cast: the stream's read returns memoryviews where it can, which the C unpickler takes.
    return pickle.Unpickler(cast(Any, stream)).load()


def _check_format(format: str, *, allow_auto: bool) -> None:
    allowed = (*FORMATS, "auto") if allow_auto else FORMATS
    if format not in allowed:
        raise ValueError(f"format must be one of {', '.join(allowed)}, not {format!r}")


# -- what a pickle refers to ----------------------------------------------------------------


def pickle_globals(data: bytes) -> set[str]:
    """The ``module.name`` of every class or function a pickle refers to, read without running it.

    Follows the opcodes (``GLOBAL``, ``STACK_GLOBAL`` with its two strings, including strings
    fetched back from the memo). Used to choose a format and to list the libraries a model needs.
    """
    found: set[str] = set()
    memo: dict[int, object] = {}
    recent: list[object] = []  # the last two values pushed, enough for STACK_GLOBAL
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name == "GLOBAL":
            module, _, qualname = str(arg).partition(" ")
            found.add(f"{module}.{qualname}")
            pushed: object = None
        elif name == "STACK_GLOBAL":
            if len(recent) == 2 and all(isinstance(v, str) for v in recent):
                found.add(f"{recent[0]}.{recent[1]}")
            pushed = None
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed = arg
        elif name in ("FRAME", "PROTO", "STOP"):
            continue
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
            continue
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(str(arg))] = recent[-1] if recent else None
            continue
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed = memo.get(int(str(arg)))
        else:
            pushed = None
        recent = [*recent[-1:], pushed]
    return found


class _RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.globals: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.globals.add(f"{module}.{name}")
        return super().find_class(module, name)


def unpickle_with_globals(data: bytes) -> tuple[Any, set[str]]:
    """Unpickle hash-verified bytes, noting every class and function the pickle imported (what
    :func:`pickle_globals` reads, at no extra cost when the object is needed anyway)."""
    unpickler = _RecordingUnpickler(data)
    return unpickler.load(), unpickler.globals


def _skops_candidate(globals_: Iterable[str]) -> bool:
    """Whether skops could possibly load this with its default trust: a cheap pre-check that
    imports nothing (``import skops.io`` lists every scikit-learn estimator and takes seconds),
    so tree ensembles, which skops refuses anyway, never pay for it. skops itself decides."""
    if not _skops_installed():
        return False
    refused = set(_SKOPS_REFUSES)
    loaded = sys.modules.get("skops.io.exceptions")
    if loaded is not None:
        refused |= set(getattr(loaded, "UNTRUSTED_TYPE_REASONS", {}))
    for ref in globals_:
        if ref.split(".", 1)[0] not in _SKOPS_MODULES or ref in refused:
            return False
        if ref.startswith(_SKOPS_REFUSED_MODULES):
            return False
    return True


@functools.cache
def _skops_installed() -> bool:
    return importlib.util.find_spec("skops") is not None


def to_skops(model: object, pickled: bytes, globals_: Iterable[str]) -> bytes | None:
    """Canonical skops bytes of ``model`` if they load with default trust and round-trip."""
    if not _skops_candidate(globals_):
        return None
    import skops.io as sio  # takes seconds (it lists every scikit-learn estimator): on use only

    try:
        data = canonical_skops(sio.dumps(model))
        loaded = sio.loads(data)  # default trusted types only: raises on anything else
    except Exception:  # skops refuses many objects, each its own way: pickle then
        return None
    if pickle.dumps(loaded, protocol=PICKLE_PROTOCOL) != pickled and not same_state(model, loaded):
        return None
    return data


def canonical_skops(data: bytes) -> bytes:
    """The same skops archive with reproducible bytes.

    skops names array files and memo ids after ``id(obj)`` (or a uuid) and stamps each zip entry
    with the current time, so saving one model twice gives two hashes. Here ids become 1, 2, ...
    and files 0.npy, 1.npy, ... in order of first appearance in ``schema.json`` (a deterministic
    walk), and every entry gets the zip epoch as its time.
    """
    import zipfile  # only skops archives need it: kept out of import nbmlops

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        names = set(src.namelist()) - {"schema.json"}
        schema = json.loads(src.read("schema.json"))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                out: dict[str, Any] = {}
                for key, value in node.items():
                    if key == "__id__" and isinstance(value, int) and not isinstance(value, bool):
                        out[key] = ids.setdefault(value, len(ids) + 1)
                    elif key == "file" and isinstance(value, str) and value in names:
                        suffix = value[value.rfind(".") :] if "." in value else ""
                        out[key] = files.setdefault(value, f"{len(files)}{suffix}")
                    else:
                        out[key] = walk(value)
                return out
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node

        canonical = walk(schema)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:

            def put(name: str, content: bytes) -> None:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                out.writestr(info, content)

            put("schema.json", json.dumps(canonical, indent=2).encode())
            for old, new in sorted(files.items(), key=lambda item: int(item[1].split(".")[0])):
                put(new, src.read(old))
            for other in sorted(names - set(files)):  # not referenced: kept as they are
                put(other, src.read(other))
    return buffer.getvalue()


def same_state(a: object, b: object, _depth: int = 0) -> bool:
    """Whether two objects hold equal state: same types, equal attributes, arrays, containers.

    Object identity (two attributes sharing one list) is not compared, which is what skops
    loses and pickle keeps; the values are.
    """
    if _depth > 200:
        return False
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (a != a and b != b)  # NaN equals NaN here
    if isinstance(a, str | bytes | int | bool | complex | type(None)):
        return a == b
    if isinstance(a, list | tuple):
        assert isinstance(b, list | tuple)
        return len(a) == len(b) and all(
            same_state(x, y, _depth + 1) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(same_state(a[k], b[k], _depth + 1) for k in a)
    if type(a).__module__ == "numpy" and type(a).__name__ == "ndarray":
        x: Any = a
        y: Any = b
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if x.dtype.kind == "O":
            return same_state(x.tolist(), y.tolist(), _depth + 1)
        return bool(x.tobytes() == y.tobytes())
    state_a, state_b = _state(a), _state(b)
    if state_a is not None and state_b is not None:
        return same_state(state_a, state_b, _depth + 1)
    try:
        return pickle.dumps(a, protocol=PICKLE_PROTOCOL) == pickle.dumps(
            b, protocol=PICKLE_PROTOCOL
        )
    except Exception:
        return False


def _state(obj: object) -> dict[str, Any] | None:
    getstate = getattr(obj, "__getstate__", None)
    state = getstate() if callable(getstate) else None
    if isinstance(state, dict):
        return state
    return dict(vars(obj)) if hasattr(obj, "__dict__") else None


# -- libraries ------------------------------------------------------------------------------


def libraries_for(
    globals_: Iterable[str],
    packages: Mapping[str, str],
    *,
    recorded: Mapping[str, str] | None = None,
    format: str = PICKLE,
) -> dict[str, str]:
    """Library versions a model artifact needs: Python, every distribution whose classes it
    refers to, skops for the skops format, the library that reads a portable format (XGBoost,
    LightGBM, PyTorch and safetensors). ``recorded`` (what ``log_model`` wrote) wins over
    ``packages`` (the environment the model was trained in, else this one)."""
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    if recorded:
        versions.update({str(k): str(v) for k, v in recorded.items()})
    stdlib: frozenset[str] = sys.stdlib_module_names
    tops = {ref.split(".", 1)[0] for ref in globals_} | set(
        model_formats.FORMAT_MODULES.get(format, ())
    )
    for top in sorted(tops):
        if top in _NOT_LIBRARIES or top in stdlib or top.startswith("_"):
            continue
        dist = distribution_of(top, packages)
        if dist is not None and dist not in versions and dist in packages:
            versions[dist] = packages[dist]
    if format == SKOPS and "skops" not in versions and "skops" in packages:
        versions["skops"] = packages["skops"]
    return dict(sorted(versions.items()))


def distribution_of(module: str, packages: Mapping[str, str]) -> str | None:
    """The (normalised) distribution name that provides top-level module ``module``."""
    guess = _DISTRIBUTIONS.get(module, module.lower().replace("_", "-"))
    if guess in packages:
        return guess
    found = _packages_distributions().get(module)
    return found[0].lower().replace("_", "-") if found else None


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


def library_mismatches(
    recorded: Mapping[str, str], installed: Mapping[str, str]
) -> list[tuple[str, str, str | None]]:
    """``(library, recorded, installed or None)`` for each library that differs. Python counts
    only by major.minor: pickles move between patch releases."""
    out: list[tuple[str, str, str | None]] = []
    for lib, wanted in sorted(recorded.items()):
        if lib == "python":
            here = sys.version.split()[0]
            if wanted.split(".")[:2] != here.split(".")[:2]:
                out.append((lib, wanted, here))
        elif installed.get(lib) != wanted:
            out.append((lib, wanted, installed.get(lib)))
    return out
