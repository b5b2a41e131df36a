"""Evaluate one run folder: utility, fidelity and privacy of its synthetic dataset.

- utility (:mod:`.utility_eval`): models trained under each protocol and number of real
  patients, over seeds, each tested once on the real test split;
- fidelity (:mod:`.fidelity_eval`): synthetic vs real training rows next to held-out vs real
  training rows, in a feature space fitted on real training rows only; label checks;
- privacy (:mod:`.privacy_eval`): near-copies, reproduced patients, membership attacks,
  data copying.

Everything lands in one JSON-ready dict (``metrics.json``); the report reads only that and the
files named in it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from synthmed.config.loading import config_to_dict, resolve_config
from synthmed.config.schema import EvaluateConfig, RunConfig
from synthmed.data.pipeline import describe
from synthmed.devices import resolve_device
from synthmed.errors import InputError
from synthmed.evaluation.fidelity.suite import to_jsonable
from synthmed.evaluation.fidelity_eval import build_extractor, fidelity_section
from synthmed.evaluation.inputs import EvalInputs, load_inputs
from synthmed.evaluation.privacy_eval import privacy_section
from synthmed.evaluation.utility_eval import run_utility


def _provenance(inputs: EvalInputs, run_dir: Path, synth_dir: Path, timing: dict) -> dict:
    manifest, ckpt = inputs.manifest, inputs.checkpoint
    seeds = [int(r["seed"]) for r in manifest if r.get("seed", "") != ""]
    filtering = synth_dir / "filtering.json"
    return {
        "checkpoint": str(inputs.checkpoint_path.relative_to(run_dir)),
        "checkpoint_sha256": manifest[0].get("checkpoint_sha256", "") if manifest else "",
        "config_hash": ckpt.get("config_hash", ""),
        "n_synthetic": len(manifest),
        "seeds": f"{min(seeds)}..{max(seeds)}" if seeds else "",
        "generator_steps": int(ckpt.get("step", 0)),
        "near_copy_filtering": json.loads(filtering.read_text()) if filtering.is_file() else None,
        "export_gate": _gate_summary(synth_dir),
        "evaluate_timing": timing,
    }


def _gate_summary(synth_dir: Path) -> dict | None:
    """The export gate's verdict on the evaluated dataset (None: it has no gate record)."""
    from synthmed.evaluation.gate import read_gate, summary

    record = read_gate(synth_dir)
    return None if record is None else summary(record)


def evaluation_settings(config: RunConfig | EvaluateConfig) -> dict[str, Any]:
    """The evaluation settings as metrics.json records them (the report's config section)."""
    ecfg = config.evaluate if isinstance(config, RunConfig) else config
    return {
        **ecfg.model_dump(mode="json", exclude={"utility"}),
        "utility": ecfg.utility.model_dump(mode="json"),
    }


def _timed(timing: dict[str, float], key: str, fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    timing[key] = round(time.perf_counter() - start, 1)
    return out


def _sections(inputs: EvalInputs, config: RunConfig, run_dir: Path, dev, quiet, timing) -> dict:
    """utility, fidelity and privacy (None when switched off); seconds of each in ``timing``.

    Utility runs first: its ``real`` U-Net is the segmenter of the image-label agreement.
    """
    ecfg = config.evaluate
    utility, reference = _timed(
        timing, "utility_s", run_utility, inputs, ecfg.utility, dev, quiet, ecfg.fidelity
    )
    fidelity = privacy = extractor = None
    if ecfg.fidelity or ecfg.privacy:
        extractor = _timed(
            timing, "extractor_s", build_extractor, ecfg, run_dir, inputs.real.images, dev
        )
    if ecfg.fidelity:
        fidelity = _timed(
            timing, "fidelity_s", fidelity_section, inputs, config, extractor, reference, dev
        )
    if ecfg.privacy:
        args = (inputs, run_dir, extractor, ecfg.near_copy_quantile, dev)
        privacy = _timed(timing, "privacy_s", privacy_section, *args)
    return {"utility": utility, "fidelity": fidelity, "privacy": privacy}


def evaluate_run(
    config: RunConfig, run_dir: Path, synth_dir: Path, device: str = "auto", quiet: bool = False
) -> dict:
    """Utility, fidelity and privacy of ``synth_dir`` for the run in ``run_dir``.

    Returns:
        JSON-ready metrics (NaN/inf as None): ``run``, ``task``, ``model``, ``preset``,
        ``synthetic_dir``, ``n_training_pairs``, ``pair_shape``, ``data``, ``evaluation``
        (settings), ``scored_lesion_value``, ``utility``, ``fidelity``, ``privacy`` (None
        when switched off), ``provenance``.
    """
    run_dir, synth_dir = Path(run_dir), Path(synth_dir)
    t0 = time.perf_counter()
    inputs = load_inputs(config, run_dir, synth_dir)
    timing = {"load_s": round(time.perf_counter() - t0, 1)}
    sections = _sections(inputs, config, run_dir, resolve_device(device), quiet, timing)
    timing["total_s"] = round(time.perf_counter() - t0, 1)
    metrics = {
        "run": run_dir.name,
        "task": inputs.task,
        "model": inputs.checkpoint.get("model_name", "?"),
        "preset": config.preset,
        "synthetic_dir": str(synth_dir),
        "n_training_pairs": len(inputs.real),
        "pair_shape": list(inputs.real.images.shape[1:]),
        "data": {name: describe(items) for name, items in inputs.splits.items()},
        "evaluation": evaluation_settings(config),
        # the label value scored alone (evaluate.label_target resolved); None: every class.
        # Not inside "evaluation": that holds exactly the settings (reproduce compares them)
        "scored_lesion_value": inputs.lesion_value,
        **sections,
        "provenance": _provenance(inputs, run_dir, synth_dir, timing),
    }
    return to_jsonable(metrics)


def with_evaluate_overrides(
    config: RunConfig,
    protocols: list[str] | None = None,
    sizes: list[int | str] | None = None,
    seeds: int | list[int] | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """The run config with command-line evaluation settings applied and validated.

    Only ``evaluate.*`` keys may change: the data and model must stay those the generator was
    trained with, or the evaluation would not describe this run.
    """
    extra = list(overrides or [])
    bad = [o for o in extra if not o.strip().startswith("evaluate.")]
    if bad:
        raise InputError(f"evaluate --set only takes evaluate.* keys, got {bad[0]!r}")
    if protocols:
        extra.append(f"evaluate.utility.protocols={json.dumps(list(protocols))}")
    if sizes:
        parsed = ["all" if str(s).strip().lower() == "all" else _int(s, "--sizes") for s in sizes]
        extra.append(f"evaluate.utility.sizes={json.dumps(parsed)}")
    if seeds is not None:
        if isinstance(seeds, int):
            if seeds < 1:
                raise InputError("--seeds must be >= 1")
            seeds = list(range(seeds))
        extra.append(f"evaluate.utility.seeds={json.dumps([int(s) for s in seeds])}")
    if not extra:
        return config
    return resolve_config(
        config_to_dict(config), overrides=extra, source="evaluate options", apply_preset=False
    )


def _int(value: Any, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{option}: {value!r} is neither a number nor 'all'") from None
