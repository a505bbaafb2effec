"""Benchmarks of the walks: per-step overhead and accuracy on exact mixtures.

Run ``python bench/run.py [--quick]`` from the repository root; it writes ``docs/BENCHMARKS.md`` and the
plots under ``docs/bench/``. Inside, the pack is imported as ``rwalk`` (see ``run.py``), so these modules
use relative imports and can also be loaded as ``rwalk.bench`` (``rwalk.bench.smoke.smoke()``).
"""
