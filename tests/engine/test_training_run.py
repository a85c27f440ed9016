"""End-to-end training through the CLI on a tiny phantom: run folder contract, exact resume, clear errors."""

from __future__ import annotations

import csv

import pytest
import torch

from landmark_afl.cli import main
from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
from landmark_afl.engine.trainer import NonFiniteLossError, OptimConfig, Trainer
from landmark_afl.recipes.landmarks import check_compatible, load_trained_run
from landmark_afl.tasks.base import TrainTask

TINY = ["input_size=[64,64]", "batch_size=4", "optim.log_every=1", "augment.noise=0.01"]


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory):
    from landmark_afl.data.phantom import generate_phantom

    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ph", n=12, seed=3, size=128)


def _train(data, out, *extra):
    return main(["train", "--data", str(data), "--out", str(out), *extra, *TINY])


def test_run_folder_contract_and_exact_resume(tiny_phantom, tmp_path, monkeypatch):
    full, split = tmp_path / "full", tmp_path / "split"
    assert _train(tiny_phantom, full, "--epochs", "2") == 0

    end_epoch = Trainer._end_epoch

    def killed_after_first_epoch(self, metrics, writer, console):
        end_epoch(self, metrics, writer, console)
        raise KeyboardInterrupt  # as if the job were killed right after epoch 1 was saved

    monkeypatch.setattr(Trainer, "_end_epoch", killed_after_first_epoch)
    assert _train(tiny_phantom, split, "--epochs", "2") == 130
    monkeypatch.setattr(Trainer, "_end_epoch", end_epoch)
    assert main(["train", "--resume", str(split)]) == 0

    for name in ("config.yaml", "metrics.csv", "difficulty.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (full / name).is_file(), name
    assert list(full.glob("events.out.tfevents.*"))

    a, b = load_checkpoint(full / "checkpoints/last.pt"), load_checkpoint(split / "checkpoints/last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"]
    for key, tensor in a["task"].items():
        torch.testing.assert_close(tensor, b["task"][key], rtol=0, atol=0, msg=f"{key} differs after resume")
    assert (
        a["config"]["optim"]["epochs"] == 2
        and a["recipe"] == "landmarks"
        and a["landmarks"] == b["landmarks"]
        and len(a["landmarks"]) == 36
    )

    with (split / "metrics.csv").open() as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    with (split / "difficulty.csv").open() as f:
        rows = list(csv.DictReader(f))
    epochs = {int(r["epoch"]) for r in rows}
    assert epochs == {1, 2}
    assert all(0.0 < float(r["score"]) < 1.0 for r in rows)
    n_train = len(rows) // 2
    assert n_train >= 4

    run = load_trained_run(full, "best")
    assert run.protocol == "high" and run.task.codec.input_size == (64, 64)


def test_baseline_run_has_no_critic_and_resume_checks_compatibility(tiny_phantom, tmp_path):
    out = tmp_path / "base"
    assert _train(tiny_phantom, out, "--epochs", "1", "--no-afl") == 0
    state = load_checkpoint(out / "checkpoints/last.pt")
    assert not any(k.startswith("afl.") for k in state["task"])
    meta = {"landmarks": state["landmarks"][:-1], "protocol": state["protocol"]}
    with pytest.raises(CheckpointError, match="36 landmarks"):
        check_compatible(state, meta, out)
    with pytest.raises(CheckpointError, match="protocol 'high'"):
        check_compatible(state, {"landmarks": state["landmarks"], "protocol": "low"}, out)
    config_before = (out / "config.yaml").read_text()
    assert main(["train", "--resume", str(out), "--epochs", "1", "--protocol", "low"]) == 2
    assert (out / "config.yaml").read_text() == config_before  # a refused resume changes nothing


def test_usage_errors_exit_2(tiny_phantom, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert _train(tiny_phantom, out, "--epochs", "1") == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert main(["train", "--protocol", "hihg", "--data", str(tiny_phantom), "--out", str(tmp_path / "o2")]) == 2
    assert "high" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "o3"), "epoch=3"]) == 2
    assert "Did you mean" in capsys.readouterr().err


class _NaNTask(TrainTask):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, batch):
        return {"loss": self.w * float("nan")}

    def validate(self, loader, out_dir=None):
        return {"val_loss": 0.0}


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    loader = torch.utils.data.DataLoader([{"image": torch.zeros(1)}] * 2, batch_size=1)
    trainer = Trainer(_NaNTask(), loader, loader, OptimConfig(epochs=1), tmp_path, "cpu", {})
    with pytest.raises(NonFiniteLossError, match="non-finite loss.*epoch 1, step 1.*Lower optim.lr"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


class _CountingTask(TrainTask):
    """A task that logs and records under names the trainer has never heard of."""

    records_file = "per_sample.csv"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        x = batch["image"].view(-1)
        loss = ((self.w - x) ** 2).mean()
        return {"loss": loss, "log": {"sq_err": loss.detach(), "const": 2.0},
                "records": {"sample": list(batch["id"]), "value": x}}  # fmt: skip

    def validate(self, loader, out_dir=None):
        (out_dir / "validated.txt").write_text("yes")
        return {"val_w": float(self.w.detach())}

    def selection_key(self, metrics):
        return (-metrics["val_w"],)


def test_trainer_writes_what_the_task_hands_it(tmp_path):
    data = [{"image": torch.tensor([float(i)]), "id": f"s{i}"} for i in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    trainer = Trainer(_CountingTask(), loader, loader, OptimConfig(epochs=2, lr=0.1), tmp_path, "cpu", {}, seed=1)
    trainer.fit()
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[0]["train_const"]) == 2.0 and "train_sq_err" in rows[0] and "val_w" in rows[0]
    with (tmp_path / "per_sample.csv").open() as f:
        recorded = list(csv.DictReader(f))
    assert [(r["epoch"], r["sample"], float(r["value"])) for r in recorded[:4]] == [
        ("1", f"s{i}", float(i)) for i in range(4)
    ]
    assert len(recorded) == 8 and not (tmp_path / "difficulty.csv").exists()
    assert (tmp_path / "validated.txt").read_text() == "yes"
    assert load_checkpoint(tmp_path / "checkpoints/best.pt")["epoch"] == 2  # w grows: the later epoch is best


def test_old_flat_keys_still_train_with_a_notice(tiny_phantom, tmp_path, capsys):
    out = tmp_path / "old"
    assert main(["train", "--data", str(tiny_phantom), "--out", str(out), "--epochs", "1", "input_size=[64,64]",
                 "lr=5e-4", "log_every=1", "--no-afl"]) == 0  # fmt: skip
    assert "lr -> optim.lr" in capsys.readouterr().out
    assert load_checkpoint(out / "checkpoints/last.pt")["config"]["optim"]["lr"] == 5e-4


def test_show_config_and_unknown_task(capsys):
    assert main(["train", "--show-config"]) == 0
    text = capsys.readouterr().out
    assert "afl.critic_center = True" in text and "optim.lr = 0.001" in text and "(undocumented)" not in text
    assert main(["train", "--task", "landmark"]) == 2
    assert "Did you mean landmarks" in capsys.readouterr().err


def test_records_are_appended_and_a_torn_tail_is_dropped(tmp_path):
    from landmark_afl.engine.trainer import _append_csv, _read_csv_rows

    path = tmp_path / "difficulty.csv"
    _append_csv(path, [{"epoch": 1, "image": "a", "score": 0.5}, {"epoch": 1, "image": "b", "score": 0.25}])
    _append_csv(path, [{"epoch": 2, "image": "a", "score": 0.75, "extra": 1}])  # the header stays the first one
    with path.open("a") as f:
        f.write("3,c")  # a kill in the middle of an append
    assert path.read_text().splitlines()[:2] == ["epoch,image,score", "1,a,0.5"]
    rows = _read_csv_rows(path, max_epoch=5)
    assert [(r["epoch"], r["image"]) for r in rows] == [("1", "a"), ("1", "b"), ("2", "a")]
    assert [r["image"] for r in _read_csv_rows(path, max_epoch=1)] == ["a", "b"]


def test_a_landmark_outside_its_image_stops_training_with_the_row_named(tmp_path, capsys):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=6, seed=3, size=96)
    csv_path = data / "landmarks.csv"
    lines = csv_path.read_text().splitlines()
    image, name, _, y = lines[1].split(",")
    lines[1] = f"{image},{name},9999.5,{y}"
    csv_path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert _train(data, tmp_path / "run", "--epochs", "1") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"landmark {name!r} of image {image!r} at (x=9999.5" in err and "data check" in err
    assert "Traceback" not in err


def test_a_kill_while_best_pt_is_saved_loses_no_epoch_and_leaves_no_temporary(tiny_phantom, tmp_path, monkeypatch):
    import landmark_afl.engine.trainer as trainer_module

    run = tmp_path / "run"
    real_save = trainer_module.save_checkpoint

    def killed_in_second_best_save(path, state):
        if path.name == "best.pt" and state["epoch"] == 2:
            (path.parent / "best.pt.k1ll3d.tmp").write_bytes(b"\0" * 4096)  # what SIGKILL leaves mid torch.save
            raise KeyboardInterrupt
        real_save(path, state)

    monkeypatch.setattr(trainer_module, "save_checkpoint", killed_in_second_best_save)
    code = _train(tiny_phantom, run, "--epochs", "2")
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    if code == 0:
        pytest.skip("epoch 2 did not improve on epoch 1 here, so best.pt was not saved at epoch 2")
    assert code == 130
    assert main(["train", "--resume", str(run)]) == 0
    assert not list((run / "checkpoints").glob("*.tmp"))
    with (run / "metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]  # epoch 2 redone once, not lost or doubled
    with (run / "difficulty.csv").open() as f:
        assert sorted({int(r["epoch"]) for r in csv.DictReader(f)}) == [1, 2]
    last, best = load_checkpoint(run / "checkpoints/last.pt"), load_checkpoint(run / "checkpoints/best.pt")
    assert last["epoch"] == 2 and last["best_metrics"]["epoch"] == best["epoch"]
