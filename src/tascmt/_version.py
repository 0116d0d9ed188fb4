"""The package version, in a module of its own so that any stage can read it without importing ``tascmt``'s
``__init__`` (whose lazy names reach the model and inference stages). Keep in step with pyproject.toml."""

__version__ = "0.1.0"
