"""Moved to :mod:`tascmt.evaluation.resformer`; this path re-exports its public names."""

from tascmt.evaluation.resformer import (  # noqa: F401
    evaluate_resformer,
    is_resformer_checkpoint,
    to_markdown,
)
