"""``cli.py sweep``'s options (the command itself: command.py). Loads nothing heavy: cli.py builds its parser
from this for every command, ``--help`` included."""
from __future__ import annotations

import argparse
from pathlib import Path

from .executors.base import EXECUTOR_MODULES

EXAMPLES = """\
examples:
  .venv/bin/python cli.py sweep wf.json --vary WalkSampler.steps=10:50:10 --seeds 0-3 --output-dir sweeps/steps
  .venv/bin/python cli.py sweep wf.json --vary WalkSampler.walk=euler,adams --vary 2.steps=10,20 --output-dir sweeps/b
  .venv/bin/python cli.py sweep wf.json --vary 2.s_noise=1,1.05 --vary 2.steps=8,16 --zip --output-dir sweeps/paired
  .venv/bin/python cli.py sweep wf.json --vary 2.steps=4,8 --seeds 3,7,9 --workers 2 --output-dir sweeps/w2
  .venv/bin/python cli.py sweep wf.json --vary 2.steps=4,8 --seeds 3,7,9 --workers 2 --output-dir sweeps/w2 --resume
  .venv/bin/python cli.py sweep wf.json --vary 2.steps=4,8 --executor ray --ray-address auto --output-dir sweeps/ray

Each job is the workflow with one combination of the values (--zip: the i-th value of every --vary together),
checked like `run --set` before any job runs. Its pictures are written as <job id>.png (the job id is made of
its values and seed) with the job's workflow embedded; sweep.jsonl lists every finished job; xy_plot*.png lays
the pictures out with the first --vary as columns, the second as rows and the third as one sheet per value
(--seeds counts as one more axis). Exit status: 0 all jobs done, 1 some failed (listed), 2 a problem with the
sweep (nothing ran, nothing written).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep's own options (the workflow, --set, --seed, --max-memory and -q/-v come from cli.py's parents)."""
    parser.add_argument("--vary", action="append", default=[], metavar="NODE.INPUT=V1,V2,...",
                        help="an axis: the input takes each value in turn (repeatable; a range a:b:step counts from "
                        "a to b, e.g. WalkSampler.steps=10:50:10; NODE as for --set)")
    parser.add_argument("--seeds", metavar="SEEDS", help="run every combination with each of these seeds, set on every "
                        "seed / noise_seed input: a range 0-15 or a list 3,7,9 (more than one seed is an axis)")
    parser.add_argument("--zip", action="store_true", help="pair the --vary values one to one (the i-th of each "
                        "together) instead of trying every combination")
    parser.add_argument("--input-dir", type=Path, help="folder LoadImage reads from (default: ./input)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for the pictures, sweep.jsonl and "
                        "the contact sheets (an earlier sweep's folder needs --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --output-dir: skip the jobs its "
                        "sweep.jsonl records as done, run the failed and missing ones")
    parser.add_argument("--no-progress", action="store_true", help="no sweep progress bar (or log lines)")
    parser.add_argument("--executor", choices=list(EXECUTOR_MODULES), default="local", help="where the jobs run: "
                        "local (this machine, default), ray (a Ray cluster) or comfyui (ComfyUI servers, --server)")
    parser.add_argument("--workers", type=int, metavar="N", help="local: N worker processes (default 1: in this "
                        "process, one job after another); ray: the CPUs of the local Ray instance started for the "
                        "sweep (default: all cores)")
    parser.add_argument("--ray-address", metavar="ADDRESS", help="ray: connect to this running cluster ('auto', "
                        "HOST:PORT or ray://HOST:PORT) instead of starting a local Ray instance for the sweep")
    parser.add_argument("--gpus-per-job", type=float, metavar="N", help="ray: GPUs each job asks for (default: 1 "
                        "where the cluster has GPUs, else 0)")
    parser.add_argument("--cpus-per-job", type=float, metavar="N", help="torch threads of every job, whatever the "
                        "executor (default 1; ray: the CPUs each task asks for). The same value gives the same "
                        "pictures on every executor; another thread count can change their last bits")
    parser.add_argument("--server", action="append", metavar="URL", help="comfyui: a ComfyUI server to run jobs on "
                        "(repeatable; jobs of a server that stops answering go to the others)")
