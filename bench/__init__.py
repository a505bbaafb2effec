"""Benchmarks of the walks against their peers: per-step overhead and accuracy on exact mixtures, at equal NFE.

Run ``.venv/bin/python bench/run.py [--quick]`` from the repository root; it writes ``docs/BENCHMARKS.md`` and the
plots under ``docs/bench/``. Inside, the pack is imported as ``rwalk`` (see ``run.py``), so these modules
use relative imports and can also be loaded as ``rwalk.bench`` (``rwalk.bench.smoke.smoke()``).

* samplers: ``samplers.py`` (one interface for walks and peers), ``peers.py`` with the loaders
  ``peer_kdiffusion.py`` / ``peer_comfy.py`` / ``module_loader.py``.
* targets and metrics: ``targets.py``, ``fast_exact.py``, ``metrics.py``, ``guidance_metrics.py``, ``scoring.py``,
  ``chains.py``.
* runs: ``accuracy.py``, ``overhead.py``, ``config.py`` (presets), ``pipeline.py``, ``result.py``.
* report: ``goals.py``, ``report.py``, ``report_accuracy.py``, ``markdown.py``, ``plots.py``, ``ranking.py``,
  ``sections.py``.
* for walk development: ``develop.py`` (``evaluate``) and the script ``check_goals.py``.
"""
