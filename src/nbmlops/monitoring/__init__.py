"""Monitoring of served models (issue #15): the production half of the loop.

:mod:`.labels` records ground truth keyed by request id; :mod:`.skew` the served metric of each
registry version against the offline one it was registered with (the delta method's interval,
so that a handful of labels does not raise a false alarm); :mod:`.traffic` profiles the inputs
a server scores, per window, and :mod:`.drift_windows` checks them against each version's
training profile; :mod:`.alerts` reads the ``[alerts.<name>]`` tables of ``nbmlops.toml``,
:mod:`.monitor` evaluates them, notifies and starts :mod:`.retrain`; :mod:`.timeline` puts it
all on one time axis for ``%monitor``.
"""
