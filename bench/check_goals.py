"""Measure walks against issue 6's goals and the best peers; prints the goals table and the side-by-side tables.

    .venv/bin/python bench/check_goals.py [WALK ...] [--full] [--peers best|all|none|NAME,NAME] [--out FILE]

WALK: names in walk_core.WALKS, optionally with options, e.g. ``pc:snr=0.2,corrector_steps=2`` (default: every
registered walk). About a minute with the quick sizes (default); ``--full`` uses the published run's sizes.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from run import register_pack  # bench/run.py: the pack as ``rwalk`` (this folder is on sys.path as a script's)


def parse_walk(text: str):
    """``name`` or ``name:key=value,key=value`` -> a pack sampler."""
    from rwalk.bench.samplers import pack_sampler

    name, _, opts = text.partition(":")
    options = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"check_goals: walk option {item!r} is not allowed; expected key=value (in {text!r})")
        options[key.strip()] = float(value)
    return pack_sampler(name.strip(), **options)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("walks", nargs="*", help="walk names (default: every registered walk), name:key=value,...")
    parser.add_argument("--full", action="store_true", help="the published run's sample sizes (a few minutes)")
    parser.add_argument("--peers", default="best", help="best (default), all, none, or comma-separated peer names")
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead measurement")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    register_pack()
    from rwalk.bench.develop import evaluate

    peers = args.peers if args.peers in ("best", "all", "none") else [p.strip() for p in args.peers.split(",")]
    try:
        walks = [parse_walk(w) for w in args.walks] or None
    except (KeyError, ValueError) as err:
        parser.error(str(err))
    report = evaluate(walks, quick=not args.full, peers=peers, overhead=not args.no_overhead)
    text = report.markdown()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0 if all(report.met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
