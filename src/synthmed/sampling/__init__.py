"""synthmed.sampling."""
