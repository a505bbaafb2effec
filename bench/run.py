"""Benchmark every walk and its peers: per-evaluation overhead and accuracy on exact mixtures; writes docs/BENCHMARKS.md.

    .venv/bin/python bench/run.py [--quick] [--out docs/BENCHMARKS.md] [--peers kd,comfy|none]

The default preset takes about seven minutes on two CPU cores, ``--quick`` under a minute. Peers: k-diffusion
when installed (``pip install --no-deps -r bench/requirements.txt``), ComfyUI's samplers when ``$WALK_COMFYUI``
names a ComfyUI checkout; whatever is missing is skipped and listed in the report.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import types
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def register_pack() -> None:
    """Import the pack as ``rwalk`` whatever its folder is called (as tests/conftest.py does)."""
    if "rwalk" not in sys.modules:
        pack = types.ModuleType("rwalk")
        pack.__path__ = [str(ROOT)]
        pack.__file__ = str(ROOT / "__init__.py")
        sys.modules["rwalk"] = pack


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sample sizes: about a minute")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md",
                        help="the markdown report; figures go to <its folder>/bench/ (default: docs/BENCHMARKS.md)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the whole run (default 1: steady timings on a shared machine)")
    parser.add_argument("--peers", default="kd,comfy",
                        help="peer sources, comma-separated: kd (k-diffusion), comfy ($WALK_COMFYUI); 'none' for none")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads={args.threads} is not allowed; expected >= 1")
    peers = () if args.peers == "none" else tuple(p.strip() for p in args.peers.split(",") if p.strip())
    if any(p not in ("kd", "comfy") for p in peers):
        parser.error(f"--peers={args.peers!r} is not allowed; expected kd, comfy, both comma-separated, or none")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    from rwalk.bench.config import PRESETS
    from rwalk.bench.pipeline import run_bench

    preset = "quick" if args.quick else "default"
    command = ".venv/bin/python bench/run.py" + (" --quick" if args.quick else "")
    if args.threads != 1:
        command += f" --threads {args.threads}"
    if args.peers != "kd,comfy":
        command += f" --peers {args.peers}"
    if "comfy" in peers and os.environ.get("WALK_COMFYUI"):
        command = "WALK_COMFYUI=<a ComfyUI checkout> " + command
    run_bench(replace(PRESETS[preset](), threads=args.threads, peers=peers), command, args.out.resolve())
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
