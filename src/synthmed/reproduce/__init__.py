"""Reproductions of the seed papers' claims: experiment files, a runner and result tables."""

from synthmed.reproduce.runner import arm_config, run_experiment
from synthmed.reproduce.spec import ExperimentSpec, list_experiments, read_experiment

__all__ = ["ExperimentSpec", "arm_config", "list_experiments", "read_experiment", "run_experiment"]
