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

    def _recording(self, original: Any, how: str, path_of: Callable[..., object]) -> Any:
        @wraps(original)
        def recording(*args: Any, **kwargs: Any) -> Any:
            try:
                path = path_of(*args, **kwargs)
                if path is not None and _called_from_user_code(sys._getframe(1)):
                    self._record(path, how)
            except Exception:  # recording must never break the user's read
                pass
            return original(*args, **kwargs)

        return recording

    def _wrap(self, owner: Any, name: str, how: str, path_of: Callable[..., object]) -> None:
        original = getattr(owner, name)
        setattr(owner, name, self._recording(original, how, path_of))
        self._restore.append((owner, name, original))

    def __enter__(self) -> FileReads:
        self._wrap(builtins, "open", "open", _open_path)
        # IPython puts its own `open` in the user namespace, bound to io.open at import time.
        if self.namespace is not None and callable(self.namespace.get("open")):
            original = self.namespace["open"]
            self.namespace["open"] = self._recording(original, "open", _open_path)
            self._restore.append((self.namespace, "open", original))
        pandas = sys.modules.get("pandas")
        if pandas is not None:
            for name in dir(pandas):
                if name.startswith("read_") and callable(getattr(pandas, name)):
                    self._wrap(pandas, name, f"pandas.{name}", _first_argument)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            self._wrap(numpy, "load", "numpy.load", _first_argument)
        return self

    def __exit__(self, *exc: object) -> None:
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
