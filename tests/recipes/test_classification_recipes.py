"""CIFAR and digits recipes end to end through the generic trainer, and the classification task's AFL wiring."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

from landmark_afl.afl import AFLConfig
from landmark_afl.data.cifar import CifarFormatError
from landmark_afl.engine.config import config_docs, update_config
from landmark_afl.models.small_cnn import SmallCNN
from landmark_afl.recipes import cifar, digits
from landmark_afl.recipes.train import train_recipe
from landmark_afl.tasks.classification import ClassificationTask
from tests.data.test_cifar import write_cifar10, write_cifar100

QUIET = Console(quiet=True)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _arm_config(recipe, arm: str, **values):
    return update_config(recipe.config(), {**recipe.arms[arm], **values})


# -- the task --------------------------------------------------------------------------------------------------
def _batch(n: int = 6):
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 1, 8, 8, generator=g), "label": torch.arange(n) % 10,
            "id": [f"s{i}" for i in range(n)]}  # fmt: skip


def test_afl_critic_judges_softmax_against_one_hot_and_weights_the_base_loss():
    torch.manual_seed(0)
    task = ClassificationTask(SmallCNN(10), 10, loss="focal", afl=AFLConfig(enabled=True))
    seen = {}

    def spy(real, fake):
        seen.update(real=real, fake=fake)
        return {}

    task.afl.update_critic = spy
    batch = _batch()
    with torch.no_grad():
        task.eval()
        logits = task.model(batch["image"])
        task.train()
    task.model.eval()  # dropout and BatchNorm fixed, so the forward below gives the same logits
    out = task(batch)
    torch.testing.assert_close(seen["real"], F.one_hot(batch["label"], 10).float())
    torch.testing.assert_close(seen["fake"], torch.softmax(logits, 1))
    scores = torch.sigmoid(-task.afl.critic(torch.softmax(logits, 1)))
    per_sample = (
        -((1 - torch.softmax(logits, 1)[torch.arange(6), batch["label"]]) ** 2)
        * torch.log_softmax(logits, 1)[torch.arange(6), batch["label"]]
    )
    torch.testing.assert_close(out["loss"], (scores * per_sample).mean().detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["records"]["score"], scores.detach())
    assert out["records"]["image"] == batch["id"]
    out["loss"].backward()
    assert all(p.grad is None for p in task.afl.critic.parameters())  # f gets no gradient from d, d none from f


def test_without_afl_the_loss_is_the_plain_mean_and_nothing_is_recorded():
    task = ClassificationTask(SmallCNN(10), 10, loss="ce", afl=AFLConfig(enabled=False))
    task.eval()
    out = task(_batch())
    logits = task.model(_batch()["image"])
    torch.testing.assert_close(out["loss"], F.cross_entropy(logits, _batch()["label"]))
    assert task.afl is None and "records" not in out and set(out["log"]) == {"base_loss", "acc"}


def test_record_ids_keep_only_the_tracked_samples_and_bad_logits_are_refused():
    task = ClassificationTask(SmallCNN(10), 10, afl=AFLConfig(), record_ids={"s1", "s4"})
    records = task(_batch())["records"]
    assert records["image"] == ["s1", "s4"] and records["score"].shape == (2,)
    with pytest.raises(ValueError, match=r"logits \[B, C\] = \[6, 7\], got \(6, 10\)"):
        ClassificationTask(SmallCNN(10), 7)(_batch())


# -- the recipes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", [cifar.RECIPE, digits.RECIPE])
def test_every_config_key_is_documented_and_arms_are_valid(recipe):
    undocumented = [key for key, _, doc in config_docs(recipe.config) if not doc]
    assert not undocumented
    assert set(recipe.arms) == {"ce", "focal", "afl", "focal+afl"}
    for arm, overrides in recipe.arms.items():
        cfg = update_config(recipe.config(), overrides)
        assert cfg.afl.enabled == ("afl" in arm) and cfg.loss == ("focal" if "focal" in arm else "ce")
    assert set(recipe.report_metrics) == {"top1", "balanced_acc"}


def test_cifar_defaults_are_the_standard_recipe():
    cfg = cifar.CifarConfig()
    o = cfg.optim
    assert (o.optimizer, o.lr, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.1, 0.9, True, 5e-4)
    assert (o.epochs, o.schedule, o.milestones, o.step_gamma, cfg.batch_size) == (200, "multistep", (60, 120, 160),
                                                                                   0.2, 128)  # fmt: skip
    assert (cfg.depth, cfg.width, cfg.dropout, cfg.focal_gamma, cfg.val_split) == (28, 10, 0.3, 2.0, 0.1)


def test_cifar_trains_one_epoch_end_to_end_and_evaluates(tmp_path):
    write_cifar100(tmp_path / "data", n_train=300, n_test=100)
    cfg = _arm_config(cifar.RECIPE, "focal+afl", data=str(tmp_path / "data"), depth=10, width=1, val_split=1 / 3,
                      batch_size=32, records=50, device="cpu", **{"optim.epochs": 1})  # fmt: skip
    run = tmp_path / "run"
    best = train_recipe(cifar.RECIPE, cfg, run, console=QUIET)
    assert {"val_top1", "val_top5", "val_balanced_acc", "val_loss"} <= set(best)
    rows = _rows(run / "metrics.csv")
    assert len(rows) == 1 and 0 <= float(rows[0]["val_top1"]) <= 1 and float(rows[0]["train_score_mean"]) > 0
    records = _rows(run / "difficulty.csv")
    assert len(records) == 50 and set(records[0]) == {"epoch", "image", "score", "base_loss"}
    test = cifar.RECIPE.evaluate(run, "test")
    assert test["n"] == 100 and set(cifar.RECIPE.report_metrics) <= set(test)
    assert len(_rows(run / "test_per_class.csv")) == 100
    assert cifar.RECIPE.evaluate(run, "val")["n"] == 100  # a third of the 300 training images, held out
    train_ids, val_ids = (set(cifar.split_set(cfg, s).split.ids) for s in ("train", "val"))
    assert len(train_ids) == 200 and not train_ids & val_ids
    paper = dataclasses.replace(cfg, val_split=0.0)  # the paper's protocol: validate on the test set
    assert cifar.split_set(paper, "val").split.ids == cifar.split_set(cfg, "test").split.ids


def test_cifar_bad_folders_are_named(tmp_path):
    write_cifar10(tmp_path / "ten")
    with pytest.raises(CifarFormatError, match="holds CIFAR-10"):
        cifar.build(dataclasses.replace(cifar.CifarConfig(), data=str(tmp_path / "ten")))
    with pytest.raises(ValueError, match=r"needs data=DIR.*cifar-100-python/\{train,test,meta\}"):
        cifar.build(cifar.CifarConfig())
    with pytest.raises(ValueError, match="dataset must be one of cifar100, cifar10"):
        update_config(cifar.CifarConfig(), {"dataset": "cifar1000"})
    with pytest.raises(ValueError, match="loss must be one of ce, focal"):
        update_config(digits.DigitsConfig(), {"loss": "afl"})
    with pytest.raises(ValueError, match="takes no data folder"):
        update_config(digits.DigitsConfig(), {"data": "/tmp"})


@pytest.mark.parametrize("arm", ["ce", "focal", "afl", "focal+afl"])
def test_digits_trains_one_epoch_in_every_arm(tmp_path, arm):
    cfg = _arm_config(digits.RECIPE, arm, device="cpu", **{"optim.epochs": 1})
    run = tmp_path / arm
    train_recipe(digits.RECIPE, cfg, run, console=QUIET)
    (row,) = _rows(run / "metrics.csv")
    balanced = float(row["val_balanced_acc"])
    assert 0.0 <= balanced <= 1.0 and float(row["val_top1"]) == pytest.approx(balanced)  # balanced val split
    assert (run / "difficulty.csv").is_file() == ("afl" in arm)
    if "afl" in arm:
        assert len(_rows(run / "difficulty.csv")) == 280  # every training image, once
    test = digits.RECIPE.evaluate(run, "test")
    assert test["n"] == 500 and test["top1"] == pytest.approx(test["balanced_acc"])  # the test split is balanced
    with pytest.raises(ValueError, match="evaluates the splits test, val"):
        digits.RECIPE.evaluate(run, "train")
