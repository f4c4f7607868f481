"""Monitoring of served models (issue #15): late labels joined to the prediction log, and
production skew, the served metric of each registry version against the offline metric it was
registered with.

:mod:`.labels` records ground truth keyed by request id; :mod:`.skew` computes the skew with a
bootstrap confidence interval, so that a handful of labels does not raise a false alarm.
"""
