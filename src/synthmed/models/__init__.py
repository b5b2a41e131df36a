"""synthmed.models."""
