"""The WHERE clause the query modules build from optional filters, with bound parameters only."""

from __future__ import annotations


def where(*clauses: str | tuple[str, object]) -> tuple[str, list[object]]:
    """``clauses`` joined by AND, and their parameters: a text is always a condition; a pair
    ``(sql, value)`` is one with one ``?`` bound to ``value``, left out when ``value`` is None
    (a filter not asked for)."""
    sql: list[str] = []
    params: list[object] = []
    for clause in clauses:
        if isinstance(clause, str):
            sql.append(clause)
        elif clause[1] is not None:
            sql.append(clause[0])
            params.append(clause[1])
    return " AND ".join(sql), params
