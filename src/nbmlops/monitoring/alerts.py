"""Alert rules: the ``[alerts.<alert>]`` tables of ``nbmlops.toml``, read and checked.

They live in the file that holds the promotion rules, so they are reviewed in git the same way
and the firing records the same file state (path, sha256, git commit, status)::

    [alerts.diabetes_drift]            # the alert's name
    model = "diabetes"                 # default: the alert's name
    ref = "champion"                   # the version watched: an alias or a version number
    when = ["drift_share >= 0.3", "skew.mae > offline.mae * 1.2", "labels.count >= 200"]
    window = "1h"                      # the traffic the values are computed on (default 1h)
    cooldown = "6h"                    # no second firing before (default: the window)
    action = "retrain"                 # or "notify" (the default)
    notebook = "retrain.ipynb"         # retrain only; relative to this file's folder
    parameters = { epochs = 5 }        # retrain only: more parameters for the notebook
    stop_after = 3                     # retrain only: failed retrains in a row before stopping
    timeout = "10m"                    # retrain only: the longest a notebook cell may run
    webhook_env = "DIABETES_HOOK"      # optional: a JSON POST per firing to the URL in this
                                       # environment variable (or webhook = "https://...")
    metric = "mae"                     # optional: the metric of skew.difference and the like

The alert fires when every condition of ``when`` holds. Conditions use the grammar of the
promotion rules (:mod:`nbmlops.registry.rule_language`: arithmetic, ``abs``/``min``/``max``,
``5%``, ``true``/``false``) over these operands, all computed on the requests of the last
``window`` (:data:`OPERANDS`):

===========================  =======================================================================
``drift_share``              share of drifted input columns, served traffic against the training
                             profile (a drift report is saved per evaluation)
``drift.<column>``           ``true`` when that column drifted (compare with ``== true``)
``drift_score.<column>``     that column's statistic as its method defines it (a p-value for a
                             test, a distance for a distance: see :mod:`nbmlops.drift`)
``skew.<metric>``            the served metric on labelled requests (mae, mse, rmse, r2, accuracy,
                             f1), computed as the offline one was
``offline.<metric>``         the metric recorded at registration (``offline.mae`` also finds
                             ``test_mae``, as production skew does); any recorded key
``skew.difference``          served minus offline, of ``metric`` (default: the first of those
                             six the version recorded); ``skew.ci_low``, ``skew.ci_high`` its 95%
                             interval (:mod:`nbmlops.monitoring.skew`)
``skew.significant``         ``true`` when that interval excludes 0 with at least 30 labels
``labels.count``             labelled rows of the watched version
``labels.coverage``          labelled rows / rows the watched version answered
``requests.count``           requests logged for the model (every version, and the 503s of no
                             version loaded: an outage belongs to the alert too)
``errors.count``             of those, the 4xx and 5xx; ``errors.rate`` their share
===========================  =======================================================================

A value that cannot be computed (no labels yet, no traffic, a column the model does not have)
makes its condition not hold, with the reason, and is never an exception. Only the values the
conditions name are computed: an alert on ``errors.rate`` runs no drift check and no skew.

A webhook's URL is often its own secret (Slack's and Teams' carry the token in the path). A
``webhook = "..."`` written in this file is in git, and in the store: the file's bytes are kept
under ``objects/`` at every firing. So write such a URL as ``webhook_env = "NAME"``: it is read
from that environment variable when the alert fires, is never written anywhere, and only its
origin (``scheme://host:port``) is recorded with the notification. A variable not set where
the monitor runs is a ``notify_failed`` saying so, and ``nbmlops monitor --check`` warns.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmlops._display import parse_duration
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.headless import parameters_source
from nbmlops.monitoring.retrain import RESERVED
from nbmlops.monitoring.skew import METRICS
from nbmlops.registry.model_version import check_alias, check_name
from nbmlops.registry.rule_language import (
    DEFAULT_ALIAS,
    Ref,
    Rule,
    Vocabulary,
    parse_rule,
)
from nbmlops.registry.rules_file import (
    RulesFile,
    entry_lines,
    key_line,
    load_rules,
    read_document,
    table_line,
)

ACTIONS = ("notify", "retrain")
DEFAULT_WINDOW = "1h"
DEFAULT_STOP_AFTER = 3
DEFAULT_TIMEOUT = "10m"
_KEYS = (
    "model",
    "ref",
    "when",
    "window",
    "cooldown",
    "action",
    "notebook",
    "parameters",
    "stop_after",
    "timeout",
    "webhook",
    "webhook_env",
    "metric",
    "description",
)
_RETRAIN_ONLY = ("notebook", "parameters", "stop_after", "timeout")
#: Parameters the monitor gives a retrain notebook besides retrain's own RESERVED ones.
WINDOW_PARAMETERS = ("window_start", "window_end")

# operand kind -> {key: value type}; "*" is any key (a column, a recorded metric)
_SKEW_FIELDS = {"difference": "number", "ci_low": "number", "ci_high": "number"}
_OPERANDS: dict[str, dict[str, str]] = {
    "drift_share": {"": "number"},
    "drift": {"*": "text"},
    "drift_score": {"*": "number"},
    "skew": {**dict.fromkeys(METRICS, "number"), **_SKEW_FIELDS, "significant": "text"},
    "offline": {"*": "number"},
    "labels": {"count": "number", "coverage": "number"},
    "requests": {"count": "number"},
    "errors": {"count": "number", "rate": "number"},
}
OPERANDS = (
    "drift_share",
    "drift.<column>",
    "drift_score.<column>",
    "skew.<metric>",
    *(f"skew.{key}" for key in (*_SKEW_FIELDS, "significant")),
    "offline.<metric>",
    "labels.count",
    "labels.coverage",
    "requests.count",
    "errors.count",
    "errors.rate",
)
"""Every operand a condition can name, as messages list them (``skew.<metric>``: one of the
metrics of production skew)."""


def _alert_operand(parts: list[str], text: str) -> tuple[Ref, str]:
    kind, key = parts[0], ".".join(parts[1:])
    keys = _OPERANDS.get(kind)
    if keys is None:
        raise ValueError(f"unknown operand {text!r}: use {', '.join(OPERANDS)}")
    if "" in keys:
        if key:
            raise ValueError(f"{kind!r} takes no key: write {kind}")
        return (False, kind, ""), keys[""]
    if not key:
        raise ValueError(f"{text!r} needs a key after {kind!r}")
    if "*" in keys:
        return (False, kind, key), keys["*"]
    if key not in keys:
        known = ", ".join(f"{kind}.{k}" for k in keys)
        raise ValueError(f"unknown operand {text!r}: use {known}")
    return (False, kind, key), keys[key]


CONDITIONS = Vocabulary(_alert_operand, "a monitored value like drift_share", "true/false values")
"""The operands of alert conditions (``[alerts.<alert>] when``)."""


@dataclass(frozen=True)
class Alert:
    """One ``[alerts.<name>]`` table, checked; durations in seconds."""

    name: str
    model: str
    ref: str  # an alias, or a version number written as digits
    when: tuple[Rule, ...]
    window: float
    cooldown: float
    action: str = "notify"
    notebook: Path | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    stop_after: int = DEFAULT_STOP_AFTER
    timeout: float = 600.0  # seconds a cell of the retrain notebook may run
    webhook: str | None = None
    webhook_env: str | None = None  # the environment variable holding the webhook's URL
    metric: str | None = None
    description: str | None = None
    line: int | None = None

    @property
    def model_ref(self) -> str:
        """The watched version as a registry reference: ``name@alias`` or ``name/3``."""
        return f"{self.model}/{self.ref}" if self.ref.isdigit() else f"{self.model}@{self.ref}"

    def webhook_url(self) -> str | None:
        """Where the firing is POSTed: ``webhook``, or the URL in the ``webhook_env`` variable
        read now (ValueError, never showing the value, when it is not set or not a URL)."""
        if self.webhook_env is None:
            return self.webhook
        what = f"the environment variable {self.webhook_env} (webhook_env of [alerts.{self.name}])"
        url = os.environ.get(self.webhook_env)
        if not url:
            raise ValueError(f"{what} is not set where the monitor runs; set it to the webhook URL")
        try:
            return check_webhook(url)
        except ValueError:
            raise ValueError(
                f"{what} does not hold an http:// or https:// URL with a host and, if any, a "
                "numeric port"
            ) from None


@dataclass(frozen=True)
class AlertsFile:
    """A rules file with its alert tables: ``rules`` (the file, its bytes and promotion rules,
    all checked too) and one :class:`Alert` per ``[alerts.<name>]``, in the file's order."""

    rules: RulesFile
    alerts: dict[str, Alert] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.rules.path

    def warnings(self) -> list[str]:
        """What is wrong not in the file but in this environment: a ``webhook_env`` variable
        that is not set, or holds no URL (each alert firing here would fail to notify)."""
        found = []
        for alert in self.alerts.values():
            try:
                alert.webhook_url()
            except ValueError as exc:
                found.append(f"[alerts.{alert.name}]: {exc}")
        return found

    def __repr__(self) -> str:
        lines = [
            f"AlertsFile({self.path}: {len(self.rules.models)} promotion rule table(s), "
            f"{len(self.alerts)} alert(s))"
        ]
        lines += [
            f"  [alerts.{a.name}] {a.model_ref}: {a.action} when "
            + " and ".join(rule.text for rule in a.when)
            for a in self.alerts.values()
        ]
        return "\n".join(lines)


def load_alerts(path: Path | str) -> AlertsFile:
    """Read and check the whole rules file, promotion rules and alerts: RulesFileError with the
    file and line for anything malformed."""
    path = Path(path)
    _, lines, document = read_document(path)
    rules = load_rules(path)
    tables = document.get("alerts", {})
    if not isinstance(tables, dict):
        raise RulesFileError(
            "'alerts' must be a table of [alerts.<name>] tables", path, key_line(lines, "alerts")
        )
    alerts = {name: _alert(path, lines, rules, name, table) for name, table in tables.items()}
    return AlertsFile(rules, alerts)


def _alert(path: Path, lines: list[str], rules: RulesFile, name: str, table: object) -> Alert:
    header = table_line(lines, ("alerts", name))

    def fail(message: str, key: str | None = None) -> RulesFileError:
        line = header if key is None else key_line(lines, key, header) or header
        return RulesFileError(f"[alerts.{name}]: {message}", path, line)

    if not isinstance(table, dict):
        raise RulesFileError(
            f"alerts.{name} must be a table ([alerts.{name}]) with when = [...]",
            path,
            header or key_line(lines, name),
        )
    for key in table:
        if key not in _KEYS:
            raise fail(f"unknown key {key!r}; the keys are {', '.join(_KEYS)}", key)
    model = table.get("model", name)
    try:
        check_name(model)
    except RegistryError as exc:
        raise fail(str(exc), "model" if "model" in table else None) from None
    ref = _ref(table.get("ref", DEFAULT_ALIAS), fail)
    window = _duration(table, "window", DEFAULT_WINDOW, fail)
    cooldown = _duration(table, "cooldown", window, fail)
    action = table.get("action", "notify")
    if action not in ACTIONS:
        raise fail(f'action must be "notify" or "retrain", not {action!r}', "action")
    for key in _RETRAIN_ONLY:
        if key in table and action != "retrain":
            raise fail(f'{key} is for action = "retrain"; this alert\'s action is {action!r}', key)
    notebook = _notebook(path, table.get("notebook"), action, fail)
    if action == "retrain" and model not in rules.models:
        # Checked here, not at the firing: a retrain that cannot promote would fire, run the
        # notebook for nothing, and then be held by the cooldown.
        raise fail(
            f"a retrain's candidates are promoted by [rules.{model}], and this file has no "
            f'such table: add [rules.{model}] with promote_to = "champion" and require = [...]',
            "action",
        )
    parameters = table.get("parameters", {})
    if not isinstance(parameters, dict):
        raise fail("parameters must be a table like { epochs = 5 }", "parameters")
    clash = sorted(set(parameters) & {*RESERVED, *WINDOW_PARAMETERS})
    if clash:
        raise fail(f"parameters {', '.join(clash)} are set by the monitor itself", "parameters")
    try:
        parameters_source(parameters)  # the retrain writes them into the notebook as Python
    except ValueError as exc:
        raise fail(str(exc), "parameters") from None
    stop_after = table.get("stop_after", DEFAULT_STOP_AFTER)
    if isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 1:
        raise fail(f"stop_after must be a whole number >= 1, not {stop_after!r}", "stop_after")
    timeout = _duration(table, "timeout", DEFAULT_TIMEOUT, fail)
    webhook = table.get("webhook")
    if webhook is not None:
        try:
            check_webhook(webhook)
        except ValueError as exc:
            raise fail(str(exc), "webhook") from None
    webhook_env = table.get("webhook_env")
    if webhook_env is not None:
        if webhook is not None:
            raise fail("give webhook or webhook_env, not both", "webhook_env")
        if not isinstance(webhook_env, str) or not re.fullmatch(
            r"[A-Za-z_][A-Za-z0-9_]*", webhook_env
        ):
            raise fail(
                'webhook_env is the name of an environment variable like "DIABETES_HOOK", '
                f"not {webhook_env!r}",
                "webhook_env",
            )
    metric = table.get("metric")
    if metric is not None and metric not in METRICS:
        raise fail(f"metric must be one of {', '.join(METRICS)}, not {metric!r}", "metric")
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        raise fail("description must be text", "description")
    return Alert(
        name,
        model,
        ref,
        _conditions(path, lines, table.get("when"), header, fail),
        window,
        cooldown,
        action,
        notebook,
        parameters,
        stop_after,
        timeout,
        webhook,
        webhook_env,
        metric,
        description,
        header,
    )


def check_webhook(url: object, what: str = "webhook") -> str:
    """``url`` when a POST can be sent to it: http or https, a host, a numeric port if any, no
    spaces, no ``user:password@``; else a ValueError saying which (``what``: where the URL
    was written)."""
    if not isinstance(url, str) or any(c.isspace() for c in url):
        raise ValueError(f"{what} must be an http:// or https:// URL, not {url!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host, not {url!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as exc:
        raise ValueError(f"{what} {url!r} has no usable port ({exc})") from None
    if "@" in parts.netloc:  # urllib would take user:password@host for a host name
        raise ValueError(f"{what} cannot carry a user:password@; put the secret in the path")
    return url


def _ref(value: object, fail: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    if isinstance(value, str) and value.isdigit() and int(value) >= 1:
        return str(int(value))
    try:
        if not isinstance(value, str):
            raise RegistryError(f"ref must be an alias or a version number, not {value!r}")
        return check_alias(value)
    except RegistryError as exc:
        raise fail(str(exc), "ref") from None


def _duration(table: Mapping[str, Any], key: str, default: str | float, fail: Any) -> float:
    try:
        return parse_duration(table.get(key, default), what=key)
    except ValueError as exc:
        raise fail(str(exc), key) from None


def _notebook(path: Path, value: object, action: str, fail: Any) -> Path | None:
    if action != "retrain":
        return None
    if not isinstance(value, str) or not value:
        raise fail('action = "retrain" needs notebook = "<the retrain notebook>.ipynb"', None)
    try:
        notebook = (path.parent / value).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop is a RuntimeError before 3.13
        raise fail(f"notebook {value!r} cannot be resolved ({exc})", "notebook") from None
    if not notebook.is_file():
        raise fail(
            f"notebook {value!r} not found at {notebook} (paths are relative to this file)",
            "notebook",
        )
    return notebook


def _conditions(
    path: Path, lines: list[str], when: object, header: int | None, fail: Any
) -> tuple[Rule, ...]:
    example = '["drift_share >= 0.3", "labels.count >= 200"]'
    if not isinstance(when, list) or not when:
        raise fail(f"needs when = {example}, a non-empty list of conditions", "when")
    for entry in when:
        if not isinstance(entry, str):
            raise fail(
                f'each condition is a string like "drift_share >= 0.3", not {entry!r}', "when"
            )
    when_line = key_line(lines, "when", header)
    found = entry_lines(lines, when, (when_line or header or 1) - 1)
    return tuple(
        parse_rule(text, path=path, line=line or when_line, vocabulary=CONDITIONS)
        for text, line in zip(when, found, strict=True)
    )
