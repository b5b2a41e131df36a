"""synthmed.evaluation."""
