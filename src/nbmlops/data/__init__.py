"""Data versioning (issue #16): named datasets, their versions, diffs and lineage.

A table dataset is a Delta Lake table (:mod:`nbmlops.data.tables`); a files dataset is a set of
content-addressed files with a manifest (:mod:`nbmlops.data.files`). Every version is recorded in
the store with the fingerprint ``%%track`` records for data a cell reads, which is what links runs
and models to the data versions they used (:mod:`nbmlops.data.lineage`).
"""
