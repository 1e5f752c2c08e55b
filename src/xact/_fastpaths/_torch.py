"""PyTorch fast paths (none yet: every call takes the generic path)."""
