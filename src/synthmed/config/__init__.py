"""synthmed.config."""
