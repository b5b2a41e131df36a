"""Adding arms to a committed experiment's results without re-running the others.

An experiment's arms take hours each on a CPU; when an arm is added later (the diffusion arms
of issue #13) the run folders of the earlier arms are usually gone, but their rows are in the
committed ``results.json``. Merging keeps those rows and the real-only baselines they are paired
with, so the new arm trains and evaluates only its own synthetic protocols. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from synthmed.errors import InputError
from synthmed.reproduce.spec import REAL_ARM

# what must agree for rows of two runs to be paired as one experiment's
_SAME = ("experiment", "scale", "seeds", "sizes")


def check_mergeable(base: dict, new_header: dict, source: str) -> None:
    """Refuse a merge whose rows would not pair: another experiment, scale, seeds or sizes."""
    for key in _SAME:
        if base.get(key) != new_header.get(key):
            raise InputError(
                f"--merge: the results there have {key} {base.get(key)!r}, this run "
                f"{new_header.get(key)!r}; rows of different settings cannot be paired",
                source,
            )


def has_baselines(base: dict, fold: int) -> bool:
    """Whether the committed results hold the real-only rows of this fold."""
    return any(r["arm"] == REAL_ARM and r["fold"] == fold for r in base.get("rows", []))


def merged_entries(
    base: Sequence[dict], new: Sequence[dict], arms: Sequence[str], folds: Sequence[int]
) -> list[dict]:
    """Base entries (rows, synthetic sets or runs) of the arms and folds not run now, then
    the new ones; a re-run arm replaces its earlier entries of those folds."""
    rerun, refolded = set(arms), set(folds)
    keep = [e for e in base if not (e["arm"] in rerun and e["fold"] in refolded)]
    return [*keep, *new]


def merged_parts(base: dict, part: dict) -> list[dict]:
    """The runs that made the merged results, oldest first (command, date, arms, wall time)."""
    earlier = base.get("parts") or [
        {
            "command": base.get("command"),
            "date": base.get("date"),
            "arms": sorted({r["arm"] for r in base.get("runs", [])}),
            "folds": base.get("folds_run", [0]),
            "wall_time_s": base.get("wall_time_s"),
        }
    ]
    return [*earlier, part]
