"""Progress headless: a bar on a terminal, log lines with counts, elapsed time and ETA anywhere else (CI, pipes)."""
from __future__ import annotations

import io
import logging
import re

import pytest

from test_workflows import ROOT, load_cli, load_workflow, node_table, small
from rwalk.walk_core.progress import report
from rwalk.walk_core.runner import LogProgress, TerminalProgress, progress_reporter
from rwalk.walk_core.runner import terminal

WORKFLOW = ROOT / "workflows" / "exact_mixture.json"
TRAIN = ["--references", "foliage", "--steps", "3", "--minutes", "0", "--size", "16", "--width", "8", "--levels",
         "2", "--blocks", "1", "--reference-size", "32", "--batch-size", "2"]


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def clock(monkeypatch):
    """terminal.py's clock, moved by hand."""
    now = [100.0]
    monkeypatch.setattr(terminal.time, "perf_counter", lambda: now[0])
    return now


def _run_cli(monkeypatch, stream, args):
    monkeypatch.setattr("sys.stderr", stream)
    return load_cli().main(args)


def _walk_args(tmp_path):
    args = ["run", str(WORKFLOW), "--output-dir", str(tmp_path)]
    for override in small(load_workflow(WORKFLOW, node_table())[0]):
        args += ["--set", override]
    return args


def test_a_walk_logs_steps_elapsed_and_eta_when_stderr_is_not_a_terminal(monkeypatch, tmp_path, capsys):
    stream = Stream(tty=False)
    assert _run_cli(monkeypatch, stream, _walk_args(tmp_path)) == 0
    text = stream.getvalue()
    assert "\r" not in text and "[#" not in text  # no bar drawn into a log
    lines = [line for line in text.splitlines() if "(WalkSampler):" in line and "ETA" in line]
    assert re.search(r"node \d+ \(WalkSampler\): 1/3 steps \(33%\), elapsed \d\d:\d\d, ETA \d\d:\d\d", lines[0])
    assert re.search(r": 3/3 steps \(100%\), elapsed \d\d:\d\d, ETA 00:00", lines[-1])


def test_a_walk_draws_the_bar_on_a_terminal(monkeypatch, tmp_path, capsys):
    stream = Stream(tty=True)
    assert _run_cli(monkeypatch, stream, _walk_args(tmp_path)) == 0
    text = stream.getvalue()
    assert re.search(r"\rnode \d+ \(WalkSampler\) \[#+\] 3/3 ", text)
    assert not re.search(r"WalkSampler\): \d+/3 steps", text)  # no log lines beside the bar


def test_training_logs_step_loss_elapsed_and_eta(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(terminal, "LOG_INTERVAL", 0.0)  # a line per step
    stream = Stream(tty=False)
    out = tmp_path / "m.safetensors"
    assert _run_cli(monkeypatch, stream, ["train", *TRAIN, "--out", str(out)]) == 0
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("INFO: train m.safetensors:")]
    assert len(lines) == 3, stream.getvalue()
    number = r"\d+%, step {}, loss \d+\.\d{{4}}, elapsed \d\d:\d\d, ETA {}"
    assert re.search(number.format(1, r"(\?|\d\d:\d\d)"), lines[0])  # one step in: a rate may not be known yet
    assert re.search(number.format(2, r"\d\d:\d\d"), lines[1])
    assert re.search(number.format(3, "00:00"), lines[2]) and "100%" in lines[2]


def test_quiet_training_reports_nothing(monkeypatch, tmp_path, capsys):
    stream = Stream(tty=False)
    assert _run_cli(monkeypatch, stream, ["train", *TRAIN, "--out", str(tmp_path / "q.safetensors"), "-q"]) == 0
    assert "step" not in stream.getvalue()


def test_log_lines_come_at_the_start_every_interval_and_the_end(clock, caplog):
    caplog.set_level(logging.INFO, logger=terminal.log.name)
    with LogProgress("walk", interval=10) as progress:
        for step in range(1, 31):
            clock[0] += 1.0  # one second per step
            progress(step, 30)
    lines = [r.getMessage() for r in caplog.records]
    assert [re.search(r"(\d+)/30", line).group(1) for line in lines] == ["1", "11", "21", "30"]
    assert lines[1] == "walk: 11/30 steps (37%), elapsed 00:11, ETA 00:19, 1.00 steps/s"
    assert lines[-1].startswith("walk: 30/30 steps (100%), elapsed 00:30, ETA 00:00")


def test_an_interrupted_run_logs_where_it_stopped(clock, caplog):
    caplog.set_level(logging.INFO, logger=terminal.log.name)
    with LogProgress("walk", interval=60) as progress:
        for step in range(1, 6):
            clock[0] += 1.0
            progress(step, 30)
    assert [re.search(r"(\d+)/30", r.getMessage()).group(1) for r in caplog.records] == ["1", "5"]


def test_a_resumed_run_measures_its_rate_from_the_first_update(clock, caplog):
    """Training resumed at 50 %: the half done before is not counted as done in no time."""
    caplog.set_level(logging.INFO, logger=terminal.log.name)
    progress = LogProgress("train", interval=0)
    clock[0] += 1.0
    report(progress, 500, 1000, "step 500")
    clock[0] += 10.0
    report(progress, 600, 1000, "step 600")
    first, second = (r.getMessage() for r in caplog.records)
    assert first == "train: 50%, step 500, elapsed 00:01, ETA ?"
    assert second == "train: 60%, step 600, elapsed 00:11, ETA 00:40"  # 100 per 10 s, 400 left


def test_the_reporter_follows_the_stream():
    assert isinstance(progress_reporter("x", stream=Stream(tty=True)), TerminalProgress)
    assert isinstance(progress_reporter("x", stream=Stream(tty=False)), LogProgress)
    class Writer:  # a file-like object without isatty
        write = flush = staticmethod(lambda *a: None)

    assert isinstance(progress_reporter("x", stream=Writer()), LogProgress)


def test_disabled_reporters_report_nothing(caplog):
    caplog.set_level(logging.INFO, logger=terminal.log.name)
    stream = Stream(tty=True)
    for progress in (progress_reporter("x", enabled=False, stream=stream),
                     progress_reporter("x", enabled=False, stream=Stream(tty=False))):
        progress(1, 2)
        progress.close()
    assert stream.getvalue() == "" and caplog.records == []


def test_a_bad_interval_is_named():
    with pytest.raises(ValueError, match=r"LogProgress: interval=-1 is not allowed; expected seconds >= 0"):
        LogProgress("x", interval=-1)


def test_plain_hooks_get_no_detail():
    seen = []
    report(lambda done, total: seen.append((done, total)), 1, 2, "step 1")
    report(None, 1, 2)
    assert seen == [(1, 2)]
