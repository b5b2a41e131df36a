"""Experiment files: which arms (paper presets) one reproduction trains, on which data and
pinned split, how each arm is evaluated, at which scale, and which of the paper's claims the
results are checked against.

An experiment lives in ``synthmed/reproduce/experiments/<name>.yaml``; its split files (lists
of patient IDs, one per cross-validation fold) in ``synthmed/reproduce/splits/``. Data paths
in an experiment are relative to the data root (``--data-root``, default ``../shared/data``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from synthmed.config.schema import Strict
from synthmed.errors import InputError

EXPERIMENT_PACKAGE = "synthmed.reproduce.experiments"
SPLIT_PACKAGE = "synthmed.reproduce.splits"
BASELINE = "real+classic-aug"
REAL_ARM = "real data"  # arm name of the rows that use no synthetic data


class ArmSpec(Strict):
    """One generator of the experiment: a preset plus experiment-specific settings."""

    name: str
    preset: str
    config: dict[str, Any] = {}  # merged over the preset like a user config file
    overrides: list[str] = []  # --set overrides at every scale
    quick_overrides: list[str] = []  # extra overrides of the phantom smoke version
    scale_overrides: dict[str, list[str]] = {}  # per scale name, after the scale's own


class ScaleSpec(Strict):
    """How far below the paper's settings a run is, stated beside every number it produces."""

    note: str
    quick_presets: bool = True  # start from the presets' --quick blocks
    overrides: list[str] = []  # applied to every arm (train, sample and evaluate keys)


class ClaimSpec(Strict):
    """One of the paper's claims as a paired comparison of two (arm, protocol, size) cells.

    ``kind``: ``better`` (the cell beats ``versus``) or ``within`` (it is no more than
    ``margin`` below ``versus``, the paper's "comparable").
    """

    id: str
    text: str
    paper: str  # the paper's own numbers, quoted
    arm: str
    protocol: str
    size: int | Literal["all"] = "all"
    versus_arm: str = REAL_ARM
    versus: str = "real"
    versus_size: int | Literal["all"] | None = None  # default: the same size
    metric: str | None = None  # default: the experiment's metric
    kind: Literal["better", "within"] = "better"
    margin: float = Field(0.0, ge=0.0)


class ExperimentSpec(Strict):
    name: str
    title: str
    paper: str
    task_metric: str
    data: dict[str, Any]  # the run config's data section; paths relative to the data root
    folds: list[str] = Field(min_length=1)  # split files in synthmed/reproduce/splits
    quick_data: dict[str, Any]  # phantom data of the smoke version (must match the arms)
    arms: list[ArmSpec] = Field(min_length=1)
    baseline_protocols: list[str] = ["real", BASELINE]
    synthetic_protocols: list[str]
    sizes: list[int | Literal["all"]] = ["all"]
    seeds: int = Field(3, ge=1)
    scales: dict[str, ScaleSpec]
    quick_overrides: list[str] = []
    quick_sizes: list[int | Literal["all"]] = ["all"]  # the smoke version's real-patient sweep
    claims: list[ClaimSpec] = []
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> ExperimentSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names) or REAL_ARM in names:
            raise ValueError(f"arm names must be unique and not '{REAL_ARM}'")
        for claim in self.claims:
            for arm in (claim.arm, claim.versus_arm):
                if arm != REAL_ARM and arm not in names:
                    raise ValueError(f"claim '{claim.id}' names unknown arm '{arm}'")
        if "reduced" not in self.scales:
            raise ValueError("every experiment needs a 'reduced' scale (what runs here)")
        return self


def list_experiments() -> list[str]:
    folder = resources.files(EXPERIMENT_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_experiment(name: str | Path) -> ExperimentSpec:
    """A built-in experiment by name, or an experiment file by path.

    Raises:
        InputError: unknown name (valid ones listed), unreadable file or invalid keys.
    """
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InputError("experiment file not found", path)
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        file = resources.files(EXPERIMENT_PACKAGE) / f"{name}.yaml"
        if not file.is_file():
            valid = ", ".join(list_experiments())
            raise InputError(f"unknown experiment '{name}'; valid experiments: {valid}")
        text, where = file.read_text(encoding="utf-8"), f"experiment {name}"
    try:
        raw = yaml.safe_load(text) or {}
        return ExperimentSpec.model_validate(raw)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}".replace("\n", " "), where) from None
    except ValidationError as exc:
        errors = "; ".join(
            f"key '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid experiment: {errors}", where) from None


def split_file(name: str) -> Path:
    """Path of a packaged split file (a real file: setuptools installs package data)."""
    path = Path(str(resources.files(SPLIT_PACKAGE) / name))
    if not path.is_file():
        raise InputError("split file of the experiment not found", path)
    return path
