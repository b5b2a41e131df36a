"""Diffusion sampling throughput on this machine: labelled 64x64 image+label pairs per second
through synthmed's sampler (seeded latents, batched U-Net steps, threshold decoding), for the
quick presets' U-Net at a few step counts.

    python benchmarks/diffusion_sampling.py [--n 256] [--steps 5 10 20]
    python benchmarks/diffusion_sampling.py --latent   # latent diffusion (16x16 latents)

Weights are the untrained initialisation with MONAI's zeroed output convs given random values
(the cost of a step does not depend on the weights). ``--latent`` adds the latent option
(MONAI AutoencoderKL, widths 16/32/64, so 64x64 pairs are diffused as 4 x 16x16 latents and
decoded once). Writes benchmarks/results/diffusion_sampling.json, or
diffusion_sampling_latent.json (date, machine, command, images/s per setting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from synthmed import __version__
from synthmed.config import resolve_config
from synthmed.machine import describe_machine
from synthmed.models.registry import MODELS
from synthmed.sampling.export import LoadedGenerator, generate_pairs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LATENT = {"channels": 4, "widths": [16, 32, 64], "steps": 300}


def quick_unet_options(preset: str = "diffusion-pairs") -> dict:
    return dict(resolve_config(preset=preset, quick=True).model.options)


def loaded(size: int, steps: int, options: dict) -> LoadedGenerator:
    torch.manual_seed(0)
    model = MODELS.build(
        "diffusion_pairs",
        image_channels=1,
        label_channels=1,
        spatial_size=(size, size),
        spatial_dims=2,
        **{**options, "sample_steps": steps},
    ).eval()
    with torch.no_grad():
        for p in model.generator.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0, 0.05)
    return LoadedGenerator(model, 1, "diffusion_pairs", Path("-"), "-", "-", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--latent", action="store_true", help="latent diffusion (AutoencoderKL)")
    args = parser.parse_args()
    options = quick_unet_options()
    if args.latent:
        options["latent"] = LATENT
    rows = []
    for steps in args.steps:
        gen = loaded(args.size, steps, options)
        generate_pairs(gen, list(range(8)), batch_size=8)  # warm-up
        t0 = time.perf_counter()
        generate_pairs(gen, list(range(args.n)), batch_size=args.batch)
        seconds = time.perf_counter() - t0
        rows.append({"steps": steps, "seconds": seconds, "images_per_s": args.n / seconds})
        print(rows[-1], flush=True)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "torch_threads": torch.get_num_threads(),
        "synthmed_version": __version__,
        "command": "python benchmarks/diffusion_sampling.py " + shlex.join(sys.argv[1:]),
        "unet": options,
        "size": [args.size, args.size],
        "n": args.n,
        "batch": args.batch,
        "rows": rows,
    }
    out = RESULTS / ("diffusion_sampling_latent.json" if args.latent else "diffusion_sampling.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
