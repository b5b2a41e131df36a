"""Collect the experiments' results into benchmarks/REPRODUCTION.md (and a README per
experiment folder): a headline table of every claim, then each experiment's own section.

    python benchmarks/reproduction/make_report.py

Reads benchmarks/reproduction/<experiment>/results.json (written by
`synthmed reproduce NAME --results benchmarks/reproduction/NAME`) and the hand-written
discussion in benchmarks/reproduction/discussion.md. Experiments without results are listed
as not run.
"""

from __future__ import annotations

import json
from pathlib import Path

from synthmed.reproduce import list_experiments, read_experiment
from synthmed.reproduce.markdown import fmt, results_markdown
from synthmed.reproduce.summary import generator_comparison, is_diffusion_arm

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "REPRODUCTION.md"


def headline(all_results: dict[str, dict]) -> list[str]:
    lines = [
        "| experiment | claim | paper | ours | verdict | scale |",
        "|---|---|---|---|---|---|",
    ]
    for name, results in all_results.items():
        scale = f"{results['scale']}, folds {results.get('folds_run')}, {results['seeds']} seeds"
        for c in results["claims"]:
            ours = (
                f"{fmt(c['ours'])} vs {fmt(c['ours_versus'])} ({c['metric']}; difference "
                f"{fmt(c['mean_diff'])} [{fmt(c['diff_ci_low'])}, {fmt(c['diff_ci_high'])}], "
                f"{c['n_pairs']} pairs)"
            )
            lines.append(
                f"| {name} | {c['text']} | {c['paper']} | {ours} | {c['verdict']} | {scale} |"
            )
    return lines


def _fd(results: dict, arm: str | None) -> float | None:
    """Encoder FD against the real training split on fold 0: the arm's synthetic set, or with
    ``arm=None`` the held-out real images (the same reference in every set of the fold)."""
    for entry in results.get("synthetic_sets", []):
        if entry["fold"] == 0 and arm in (None, entry["arm"]):
            side = "synthetic_vs_train" if arm else "heldout_vs_train"
            return entry["fidelity"][side].get("fd")
    return None


def _same_across_sizes(rows: list[dict]) -> list[dict]:
    """One row for a protocol whose cells are the same at every size (synthetic-only uses no
    real images, so its cells repeat per size), its sizes listed together."""
    out: list[dict] = []
    for r in rows:
        key = (r["protocol"], r["gan_arm"], r["gan"], r["diffusion"], r["mean_diff"])
        same = next((o for o in out if o["key"] == key), None)
        if same is not None:
            same["size"] = f"{same['size']}, {r['size']}"
        else:
            out.append({**r, "key": key})
    return out


def gan_vs_diffusion(all_results: dict[str, dict]) -> list[str]:
    """The diffusion column: every cell of a diffusion arm beside the best GAN arm's."""
    lines = [
        "| experiment | protocol | size | best GAN arm | GAN | diffusion arm | diffusion "
        "| diffusion - GAN [95% CI] (pairs) | better | FD GAN / diffusion / held-out |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    not_run = []
    for name in list_experiments():
        arms = [a.name for a in read_experiment(name).arms if is_diffusion_arm(a.name)]
        results = all_results.get(name)
        rows = generator_comparison(results["rows"], results["metric"]) if results else []
        for arm in arms:
            mine = _same_across_sizes([r for r in rows if r["diffusion_arm"] == arm])
            if not mine:
                not_run.append(f"`{name}` arm `{arm}`")
            for r in mine:
                fds = " / ".join(
                    fmt(v, 1)
                    for v in (_fd(results, r["gan_arm"]), _fd(results, arm), _fd(results, None))
                )
                lines.append(
                    f"| {name} | {r['protocol']} | {r['size']} | {r['gan_arm']} | {fmt(r['gan'])} "
                    f"| {arm} | {fmt(r['diffusion'])} | {fmt(r['mean_diff'])} "
                    f"[{fmt(r['diff_ci_low'])}, {fmt(r['diff_ci_high'])}] ({r['n_pairs']}) "
                    f"| {r['better']} | {fds} |"
                )
    if not_run:
        lines += ["", "Diffusion arms not run yet: " + ", ".join(not_run) + "."]
    return lines


def experiment_readme(name: str, results: dict | None) -> str:
    spec = read_experiment(name)
    lines = [
        f"# {spec.title}",
        "",
        f"Experiment file: `src/synthmed/reproduce/experiments/{name}.yaml` (arms, data, pinned "
        f"split files {spec.folds} in `src/synthmed/reproduce/splits/`, scales, claims).",
        "",
        "Re-run (reduced CPU scale; add `--quick` for the phantom smoke version, `--scale paper` "
        "for the presets' full settings):",
        "",
        "```",
        f"synthmed reproduce {name} --data-root ../shared/data --out runs/reproduce/{name} "
        f"--results benchmarks/reproduction/{name}",
        "```",
        "",
    ]
    if results is None:
        lines.append("Not run yet: no results.json here.")
    else:
        lines += [
            f"Last run: `{results['command']}` ({results['date']}, {results['machine']}, "
            f"{results.get('wall_time_s')} s).",
            "Per-arm reports (HTML, not committed) were written to the run folders: "
            + ", ".join(f"`{r['report']}`" for r in results["runs"])
            + " under the `--out` folder.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    found: dict[str, dict] = {}
    for name in list_experiments():
        file = HERE / name / "results.json"
        results = json.loads(file.read_text()) if file.is_file() else None
        if results is not None:
            found[name] = results
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / "README.md").write_text(experiment_readme(name, results))
    missing = [n for n in list_experiments() if n not in found]
    discussion = HERE / "discussion.md"
    parts = [
        "# Reproducing the seed papers' claims",
        "",
        "Written by `python benchmarks/reproduction/make_report.py` from the committed "
        "`benchmarks/reproduction/<experiment>/results.json` files; every number below comes "
        "from one of them. Each experiment is one command, `synthmed reproduce NAME` (see its "
        "folder's README.md). The papers' numbers come from ../shared/PAPERS.md and were "
        "measured on other data and at full scale: compare directions and gaps, not absolute "
        "values. A claim's verdict comes from the paired differences (same fold, seed, real "
        "subset and initialisation): `holds` when the 95% bootstrap CI of the mean difference "
        "lies on the claimed side (above 0 for 'better', above -margin for 'within'), "
        "`reversed` / `does not hold` when it lies on the other side, `inconclusive` otherwise.",
        "",
        "## Headline",
        "",
        *headline(found),
        "",
    ]
    if missing:
        parts += ["Not run yet: " + ", ".join(f"`{n}`" for n in missing) + ".", ""]
    parts += [
        "## GAN and diffusion arms side by side",
        "",
        "Each cell of a diffusion arm (issue #13) beside the GAN arm that scored best in the "
        "same cell, paired on fold and seed; `better` names the one whose side the 95% "
        "bootstrap CI of the difference lies on. FD is the domain encoder's, against the real "
        "training split (fold 0); lower is closer.",
        "",
        *gan_vs_diffusion(found),
        "",
    ]
    if discussion.is_file():
        parts += [discussion.read_text().strip(), ""]
    for results in found.values():
        parts += [results_markdown(results)]
    OUT.write_text("\n".join(parts))
    print(f"wrote {OUT} ({len(found)} experiments)")


if __name__ == "__main__":
    main()
