"""The package version, in a module of its own so that any layer can name it without importing
the package root (which loads the API, the panels and the magics)."""

__version__ = "0.1.0"
