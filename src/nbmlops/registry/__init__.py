"""The model registry: immutable versions, aliases with a full history, promotion rules from a
reviewable file, deprecation that waits for consumers, and hash-verified loading.

The functions here take an open :class:`~nbmlops.store.Store`; the public front door that
accepts any ``store=`` is :mod:`nbmlops.api` (``nbm.register_model``, ``nbm.promote``, ...).

Modules, one idea each, imported in this order (no cycles): :mod:`.model_version` (the
ModelVersion record, names and references), :mod:`.serialization` (skops or pickle, and the
trust model), :mod:`.events` (aliases, history), :mod:`.registering`, :mod:`.listings`
(DataFrames), :mod:`.loading` (with the speed-tuned chunked path behind :mod:`._chunked_load`),
:mod:`.rule_language` (a rule's grammar and evaluation), :mod:`.rules_file` (``nbmlops.toml``
and its git state), :mod:`.promotion`, :mod:`.lifecycle` (deprecation, deletion, consumers).
All SQL is in :mod:`nbmlops.store.registry`.
"""
