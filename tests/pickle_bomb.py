"""A pickle that proves code ran when it is unpickled: the tamper tests of the registry."""

from __future__ import annotations

from pathlib import Path


def _touch(path: str) -> Path:
    """Unpickling a Bomb calls this: the marker proves code ran."""
    Path(path).write_text("unpickled")
    return Path(path)


class Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _touch, (str(self.marker),)
