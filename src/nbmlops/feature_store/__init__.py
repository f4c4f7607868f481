"""The feature store (issue #17): definitions, point-in-time training sets, online values."""
