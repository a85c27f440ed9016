"""train.log in the run folder, whole lines when piped, progress of validation and of the phantom on first use."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

import landmark_afl.engine.console as console_module
from landmark_afl.cli import main
from landmark_afl.engine.console import LOG_FILE, RunConsole, progress
from landmark_afl.engine.trainer import OptimConfig, Trainer
from landmark_afl.tasks.base import TrainTask

TINY = ["input_size=[64,64]", "batch_size=4", "optim.log_every=1", "augment.noise=0.01"]
MARKER = re.compile(r"^=== \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (.*) ===$")


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory):
    from landmark_afl.data.phantom import generate_phantom

    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ph", n=12, seed=3, size=128)


class _Task(TrainTask):
    records_file = None

    def __init__(self, batches_seen: list | None = None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.batches_seen = batches_seen

    def forward(self, batch):
        return {"loss": ((self.w - batch["image"].view(-1)) ** 2).mean()}

    def validate(self, loader, out_dir=None):
        n = sum(1 for _ in loader)
        if self.batches_seen is not None:
            self.batches_seen.append((n, len(loader), loader.batch_size))
        return {"val_loss": float((self.w.detach() - 1.0) ** 2)}


def _loader(n=4):
    data = [{"image": torch.tensor([float(i)])} for i in range(n)]
    return torch.utils.data.DataLoader(data, batch_size=2)


def test_cli_train_keeps_the_console_lines_in_train_log_and_appends_on_resume(tiny_phantom, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_phantom), "--out", str(run), "--epochs", "1", *TINY]) == 0
    shown = capsys.readouterr().out  # pytest's capture is not a terminal: the piped console
    log = (run / LOG_FILE).read_text(encoding="utf-8")
    lines = log.splitlines()
    assert MARKER.match(lines[0]).group(1).startswith("train started: landmark-afl train --data ")
    assert "training " in lines[1] and "reading the data set" in lines[1]  # the start line comes first
    assert any(re.search(r"epoch 1/1 step 1/\d+ loss ", line) for line in lines)
    assert any("epoch 1 done in" in line for line in lines)
    assert any(line.startswith("validation (best epoch 1):") for line in lines)
    assert lines[-1] == f"run folder: {run}"
    assert "\x1b" not in log and "[bold]" not in log and "[/" not in log  # no colour, no markup
    assert all(line == line.rstrip() for line in lines)  # no padding
    # the log holds the console's lines (the log's timestamps carry the date as well)
    strip = re.compile(r"^\[(\d{4}-\d\d-\d\d )?(\d\d:\d\d:\d\d)\] ")
    assert [strip.sub("", x) for x in lines[1:]] == [strip.sub("", x) for x in shown.splitlines()]
    assert any(len(x) > 80 for x in shown.splitlines())  # piped: one line per message, not wrapped at 80

    first = log
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    log = (run / LOG_FILE).read_text(encoding="utf-8")
    assert log.startswith(first)  # appended
    added = log[len(first) :].splitlines()
    assert MARKER.match(added[0]).group(1) == (
        f"resumed after epoch 1 (step 2): landmark-afl train --resume {run} --epochs 2"
    )
    assert any("epoch 2 done in" in line for line in added) and added[-1] == f"run folder: {run}"


def test_a_torn_last_line_stays_one_torn_line(tmp_path):
    log = tmp_path / LOG_FILE
    log.write_text("=== [2024-01-01 00:00:00] train started ===\n[2024-01-01 00:00:01] epoch 1/2 st")  # killed
    console = RunConsole(file=io.StringIO())
    console.log("resuming")
    console.open_log(log, "resumed after epoch 1")
    console.print("epoch 2 done")
    console.close_log()
    lines = log.read_text().splitlines()
    assert lines[1] == "[2024-01-01 00:00:01] epoch 1/2 st"
    assert MARKER.match(lines[2]).group(1) == "resumed after epoch 1"
    assert lines[3].endswith("] resuming") and lines[4] == "epoch 2 done"


def test_a_run_that_stops_before_its_first_epoch_leaves_no_log(tiny_phantom, tmp_path, monkeypatch):
    def interrupted(self, epoch, i, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_step", interrupted)
    fresh = tmp_path / "fresh"
    assert main(["train", "--data", str(tiny_phantom), "--out", str(fresh), "--epochs", "1", *TINY]) == 130
    assert not fresh.exists()
    empty = tmp_path / "empty"  # an existing empty --out: emptied again, train.log included
    empty.mkdir()
    assert main(["train", "--data", str(tiny_phantom), "--out", str(empty), "--epochs", "1", *TINY]) == 130
    assert list(empty.iterdir()) == []


def test_the_start_line_comes_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    import landmark_afl.recipes.train as recipes_train

    seen = {}

    def train_recipe(recipe, cfg, run_dir, **kwargs):
        seen["before"] = capsys.readouterr().out
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(recipes_train, "train_recipe", train_recipe)
    assert main(["train", "--out", str(tmp_path / "r"), "--epochs", "1"]) == 2
    assert "training " in seen["before"] and "reading the data set, building the model" in seen["before"]


def test_trainer_with_a_plain_console_still_writes_train_log_and_shows_validation(tmp_path, monkeypatch):
    def eager(console, description, total, every_s=0.0):  # a progress line for every batch
        return progress(console, description, total, every_s=0.0)

    import landmark_afl.engine.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "progress", eager)
    out = io.StringIO()
    seen: list = []
    trainer = Trainer(_Task(seen), _loader(), _loader(6), OptimConfig(epochs=2, lr=0.1), tmp_path, "cpu", {})
    trainer.fit(Console(file=out, width=80))
    assert seen == [(3, 3, 2), (3, 3, 2)]  # the task iterates the loader as before (length, attributes)
    shown = out.getvalue()
    assert re.search(r"validating epoch 1: [123]/3, 0:00:00 elapsed, ETA 0:00:0\d", shown)
    log = (tmp_path / LOG_FILE).read_text()
    assert MARKER.match(log.splitlines()[0]).group(1) == "train started"
    assert "epoch 2 done in" in log and "validating epoch 2:" in log


def test_non_finite_first_epoch_leaves_no_log(tmp_path):
    from landmark_afl.engine.trainer import NonFiniteLossError

    class _NaN(_Task):
        def forward(self, batch):
            return {"loss": self.w * float("nan")}

    trainer = Trainer(_NaN(), _loader(), _loader(), OptimConfig(epochs=1), tmp_path, "cpu", {})
    with pytest.raises(NonFiniteLossError):
        trainer.fit(Console(file=io.StringIO()))
    assert not (tmp_path / LOG_FILE).exists()


def test_piped_progress_prints_a_line_every_few_seconds_and_nothing_for_quick_work(monkeypatch):
    clock = iter([0.0, 1.0, 6.0, 7.0, 12.5])
    monkeypatch.setattr(console_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    out = io.StringIO()
    console = RunConsole(file=out, width=80)
    with progress(console, "phantom images", 200) as update:
        update(10)  # t = 1: too soon
        update(60)  # t = 6: a line
        update(70)  # t = 7: too soon
        update(100, 200)  # t = 12.5: a line
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("phantom images: 60/200, 0:00:06 elapsed, ETA 0:00:14")
    assert lines[1].endswith("phantom images: 100/200, 0:00:12 elapsed, ETA 0:00:12")


def test_piped_lines_are_never_wrapped_inside_a_figure():
    out = io.StringIO()
    console = RunConsole(file=out, width=80)
    message = "validation (best epoch 9): " + ", ".join(f"MRE {i}.25 mm" for i in range(12))
    console.log(message)
    console.print(message)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith(message) and lines[1] == message


def test_the_default_phantom_says_what_it_does_on_first_use(tmp_path, monkeypatch, capsys):
    from landmark_afl.data.default import default_data_dir

    monkeypatch.setenv("LANDMARK_AFL_CACHE", str(tmp_path))
    path = default_data_dir(n=2, seed=0, size=64)
    err = capsys.readouterr().err
    assert "generating the default data set (the phantom: 2 synthetic hand radiographs of 64 px" in err
    assert f"phantom data set ready: {path}" in err
    assert default_data_dir(n=2, seed=0, size=64) == path and capsys.readouterr().err == ""  # cached: silent
    calls = []
    default_data_dir(n=3, seed=0, size=64, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)] and capsys.readouterr().err == ""


def test_on_a_terminal_the_log_gets_the_lines_but_not_the_progress_bars(tmp_path):
    out = io.StringIO()
    console = RunConsole(file=out, force_terminal=True, width=80)
    Trainer(_Task(), _loader(), _loader(), OptimConfig(epochs=1, lr=0.1), tmp_path, "cpu", {}).fit(console)
    console.close_log()
    assert "\x1b[" in out.getvalue()  # the terminal got colour and the bars
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    assert MARKER.match(lines[0]) and len(lines) == 3 and "epoch 1/1 step 2/2 loss" in lines[1]
    assert "epoch 1 done in" in lines[2] and "\x1b" not in "".join(lines)
