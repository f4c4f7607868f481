"""Which data files a tracked cell reads: ``open(..., "r")``, ``pandas.read_*``, ``numpy.load``.

While a tracked cell runs, those functions are wrapped; a read is recorded when the file lies
outside installed libraries and system folders (so fonts, bundled caches and configuration that a
library opens on its own are left out) and some frame on the stack is the user's code. Paths
given to ``pandas.read_*`` are recorded even when the read is done natively (e.g. pyarrow).
"""

from __future__ import annotations

import builtins
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from types import FrameType
from typing import Any

_READ_MODES = frozenset("rbt")
_STACK_DEPTH = 40


@cache
def _library_prefixes() -> tuple[str, ...]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    paths.update(p for p in sysconfig.get_paths().values())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        paths.add(user_site)
    home = Path.home()
    paths.update(
        str(home / d)
        for d in (".cache", ".config", ".ipython", ".jupyter", ".local", ".matplotlib")
    )
    paths.update(("/usr/", "/proc/", "/sys/", "/dev/", "/etc/"))
    paths.add(str(Path(__file__).resolve().parents[1]))  # nbmlops itself
    return tuple(sorted({os.path.join(os.path.realpath(p), "") for p in paths if p}))


def _is_library_file(filename: str) -> bool:
    return os.path.join(os.path.realpath(filename), "").startswith(_library_prefixes())


def _called_from_user_code(frame: FrameType | None) -> bool:
    for _ in range(_STACK_DEPTH):
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        if not filename.startswith("<frozen") and not _is_library_file(filename):
            return True
        frame = frame.f_back
    return False


# One wrapper per original function, made once per process: the wrappers report to whichever
# FileReads is active, so entering a tracked cell only swaps references (re-wrapping 20-odd
# functions with functools.wraps on every cell cost a fifth of a millisecond).
_wrappers: dict[int, Any] = {}
_active: FileReads | None = None
_pandas_readers: dict[int, tuple[str, ...]] = {}


def _wrapper_for(original: Any, how: str, path_of: Callable[..., object]) -> Any:
    wrapper = _wrappers.get(id(original))
    if wrapper is not None and wrapper.__wrapped__ is original:
        return wrapper

    @wraps(original)
    def recording(*args: Any, **kwargs: Any) -> Any:
        recorder = _active
        if recorder is not None:
            try:
                path = path_of(*args, **kwargs)
                if path is not None and _called_from_user_code(sys._getframe(1)):
                    recorder._record(path, how)
            except Exception:  # recording must never break the user's read
                pass
        return original(*args, **kwargs)

    _wrappers[id(original)] = recording
    return recording


def _readers_of(pandas: Any) -> tuple[str, ...]:
    names = _pandas_readers.get(id(pandas))
    if names is None:
        names = tuple(
            n for n in dir(pandas) if n.startswith("read_") and callable(getattr(pandas, n))
        )
        _pandas_readers[id(pandas)] = names
    return names


class FileReads:
    """A context manager recording data files read while it is active: ``paths`` maps each
    absolute path to the function that read it."""

    def __init__(self, namespace: dict[str, Any] | None = None) -> None:
        self.paths: dict[str, str] = {}
        self.namespace = namespace
        self._restore: list[tuple[Any, str, Any]] = []

    def _record(self, path: object, how: str) -> None:
        if not isinstance(path, str | os.PathLike):
            return
        try:
            full = os.path.realpath(os.fspath(path))
        except (TypeError, ValueError, OSError):
            return
        if full not in self.paths and not _is_library_file(full) and os.path.isfile(full):
            self.paths[full] = how

    def _swap(self, owner: Any, name: str, how: str, path_of: Callable[..., object]) -> None:
        is_mapping = isinstance(owner, dict)
        original = owner[name] if is_mapping else getattr(owner, name)
        wrapper = _wrapper_for(original, how, path_of)
        if is_mapping:
            owner[name] = wrapper
        else:
            setattr(owner, name, wrapper)
        self._restore.append((owner, name, original))

    def __enter__(self) -> FileReads:
        global _active
        _active = self
        self._swap(builtins, "open", "open", _open_path)
        # IPython puts its own `open` in the user namespace, bound to io.open at import time.
        if self.namespace is not None and callable(self.namespace.get("open")):
            self._swap(self.namespace, "open", "open", _open_path)
        pandas = sys.modules.get("pandas")
        if pandas is not None:
            for name in _readers_of(pandas):
                self._swap(pandas, name, f"pandas.{name}", _first_argument)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            self._swap(numpy, "load", "numpy.load", _first_argument)
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None
        while self._restore:
            owner, name, original = self._restore.pop()
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)


def _first_argument(*args: Any, **kwargs: Any) -> object:
    if args:
        return args[0]
    for key in ("filepath_or_buffer", "path", "path_or_buf", "io", "file", "fname"):
        if key in kwargs:
            return kwargs[key]
    return None


def _open_path(file: object = None, mode: str = "r", *args: Any, **kwargs: Any) -> object:
    mode = kwargs.get("mode", mode)
    if not isinstance(mode, str) or not set(mode) <= _READ_MODES:
        return None
    return file
