"""Evaluation on unseen data (issue #21): a model's metrics on a dataset, with the proof that the
dataset is unseen (none of its rows in the training data) and comparable (same columns and types,
no feature or label drift) before the metric counts."""
