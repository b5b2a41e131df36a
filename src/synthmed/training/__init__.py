"""synthmed.training."""
