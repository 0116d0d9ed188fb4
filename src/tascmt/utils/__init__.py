"""Small helpers shared by every pipeline stage (no torch import at module level)."""
