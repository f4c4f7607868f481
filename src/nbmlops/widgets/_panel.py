"""What every panel shares: a live widget plus a static HTML rendering of the same content."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets


class Panel:
    """A panel shows ``widget`` where widgets render and ``to_html()`` elsewhere (a saved or
    exported notebook, GitHub), both from one mimebundle."""

    widget: widgets.Widget

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = repr(self)
        return bundle
