"""synthmed.report."""
