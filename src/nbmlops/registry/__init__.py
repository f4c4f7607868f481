"""The model registry: immutable versions, aliases with a full history, promotion rules from a
reviewable file, deprecation that waits for consumers, and hash-verified loading.

The functions here take an open :class:`~nbmlops.store.Store`; the public front door that
accepts any ``store=`` is :mod:`nbmlops.api` (``nbm.register_model``, ``nbm.promote``, ...).

Modules: :mod:`.versions` (ModelVersion, registering, references), :mod:`.serialization` (skops
or pickle, and the trust model), :mod:`.loading`, :mod:`.events` (aliases, history),
:mod:`.rules` (the rules file and its grammar), :mod:`.promotion`, :mod:`.lifecycle`
(deprecation, deletion, consumers). All SQL is in :mod:`nbmlops.store.registry`.
"""
