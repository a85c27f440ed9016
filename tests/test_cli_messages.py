"""Every failure on user input is one paragraph with exit 2 and no traceback; a bug shows its traceback (exit 1)."""

from __future__ import annotations

import copy
import errno
import shutil

import cv2
import numpy as np
import pytest
import torch

from landmark_afl.cli import main
from tests.run_fixture import make_untrained_run


@pytest.fixture(scope="module")
def run_and_image(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_messages")
    run = make_untrained_run(root / "run", ["a", "b", "c"])
    image = root / "x.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((70, 60)) * 255).astype(np.uint8))
    return root, run, image


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


def test_a_file_where_the_output_folder_should_be(run_and_image, tmp_path, capsys):
    _, run, image = run_and_image
    (tmp_path / "out").write_text("in the way")
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "a file is in the way where a folder is needed" in _err(capsys)


def test_a_full_disk_is_a_message_and_the_job_resumes(run_and_image, tmp_path, capsys, monkeypatch):
    _, run, image = run_and_image
    import landmark_afl.inference.writer as writer

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "write", full)
    out = tmp_path / "out"
    assert main(["predict", str(run), str(image), "--out", str(out), "--no-progress", "--workers", "0"]) == 2
    assert "No space left on device; the disk is full" in _err(capsys)
    monkeypatch.undo()
    assert main(["predict", str(run), str(image), "--out", str(out), "--no-progress", "--workers", "0"]) == 0


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("input_size=[0,0]", "input_size must be two positive ints"),
        ("input_size=[-32,64]", "input_size must be two positive ints"),
        ("input_size=[100,64]", "divisible by 32"),
        ("sigma=0", "sigma must be a finite number > 0"),
        ("batch_size=0", "batch_size must be >= 1"),
        ("optim.lr=-1.0", "optim.lr must be > 0"),
        ("optim.schedule=linear", "optim.schedule must be one of"),
    ],
)
def test_wrong_config_values_are_refused_before_anything_runs(tmp_path, capsys, value, says):
    assert main(["train", "--out", str(tmp_path / "run"), value]) == 2
    assert says in _err(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("extra config key", lambda s: s["config"].update(bogus=1)),
        ("another encoder", lambda s: s["config"].update(encoder="resnet34")),
        ("fewer landmarks", lambda s: s.update(landmarks=["a", "b"])),
    ],
)
def test_a_checkpoint_whose_contents_contradict_each_other(run_and_image, tmp_path, capsys, name, edit):
    _, run, image = run_and_image
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    state = copy.deepcopy(torch.load(bad / "checkpoints" / "best.pt", weights_only=True))
    edit(state)
    torch.save(state, bad / "checkpoints" / "best.pt")
    assert main(["predict", str(bad), str(image), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "is inconsistent: its config, landmark list and weights do not fit together" in _err(capsys)


def test_an_internal_error_shows_its_traceback_and_how_to_report_it(run_and_image, tmp_path, capsys, monkeypatch):
    _, run, image = run_and_image
    import landmark_afl.inference.predictor as predictor

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(predictor, "run_predict", bug)
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert "internal error" in err and "please report it" in err


def test_an_input_folder_without_images_is_an_error_not_a_silent_success(run_and_image, tmp_path, capsys):
    _, run, _ = run_and_image
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(run), str(empty), "--out", str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "is an empty folder" in _err(capsys)
    (empty / "notes.txt").write_text("not an image")
    assert main(["predict", str(run), str(empty), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "holds 1 file(s) but no image this toolkit reads (notes.txt)" in _err(capsys)


def test_a_list_file_in_latin1_names_its_files_as_they_are(run_and_image, tmp_path, capsys):
    import os

    _, run, image = run_and_image
    folder = os.fsencode(tmp_path)
    target = os.path.join(folder, b"caf\xe9.png")
    with open(target, "wb") as f:
        f.write(image.read_bytes())
    (tmp_path / "list.txt").write_bytes(b"caf\xe9.png\n")  # a list written by an old Latin-1 system
    out = tmp_path / "o"
    assert main(["predict", str(run), str(tmp_path / "list.txt"), "--out", str(out), "--no-progress"]) == 0
    assert "caf%E9.png" in (out / "results.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_evaluate_refuses_a_threshold_that_is_not_a_peak_response_before_it_starts(run_and_image, tmp_path, value):
    _, run, _ = run_and_image
    with pytest.raises(SystemExit) as exit_info:  # argparse: exit 2 with the option named
        main(["evaluate", str(run), "--threshold", value, "--out", str(tmp_path / "e")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("spacing", [["0"], ["nan"], ["1e-30"], ["0.1", "inf"]])
def test_predict_refuses_an_absurd_spacing(run_and_image, tmp_path, capsys, spacing):
    _, run, image = run_and_image
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "o"), "--spacing", *spacing]) == 2
    assert "--spacing takes one or two pixel sizes in mm" in _err(capsys)


def test_a_foreign_pickle_is_refused_without_advising_to_unpickle_it(run_and_image, tmp_path, capsys):
    import pickle

    _, _, image = run_and_image

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Evil()))
    assert main(["predict", str(evil), str(image), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "could not be read (it holds Python objects" in err and "weights_only" not in err
    assert "this must never run" not in captured.out + captured.err


def test_a_run_without_a_finished_epoch_gives_one_way_out_not_a_circle(tmp_path, capsys):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=6, seed=3, size=96)
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_text("seed: 0\n")  # killed before its first epoch ended
    assert main(["train", "--resume", str(half)]) == 2
    assert f"train --out {half} --force" in _err(capsys)
    assert main(["train", "--data", str(data), "--out", str(half)]) == 2
    assert "has no finished epoch to resume, so start it again with --force" in _err(capsys)


def test_a_training_that_fails_before_its_first_epoch_leaves_no_run_folder(tmp_path, capsys):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=6, seed=3, size=96)
    for image in (data / "images").iterdir():
        image.write_bytes(image.read_bytes()[:2000])  # header only
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "input_size=[64,64]", "--epochs", "1"]) == 2
    assert "holds no pixel data" in _err(capsys)
    assert not run.exists()


def test_data_check_names_a_landmarks_csv_that_is_not_utf8(tmp_path, capsys):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=4, seed=3, size=96)
    (data / "landmarks.csv").write_bytes(b"image,landmark,x,y\nphantom_0000.dcm,caf\xe9,1,2\n")
    assert main(["data", "check", str(data)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "landmarks.csv" in out and "is not UTF-8 text (byte 0xe9); save it as UTF-8" in out


def test_training_on_a_set_without_val_says_how_to_make_one_and_never_suggests_test(tmp_path, capsys):
    import yaml

    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=8, seed=3, size=96)
    doc = yaml.safe_load((data / "dataset.yaml").read_text())
    doc["splits"]["train"] += doc["splits"]["val"]
    doc["splits"]["val"] = []
    (data / "dataset.yaml").write_text(yaml.safe_dump(doc))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "input_size=[64,64]"]) == 2
    err = _err(capsys)
    assert "split 'val' of" in err and "is empty, and training chooses its checkpoints on it" in err
    assert "--val N" in err and "Never validate on the test split" in err and "val_split=test" not in err


def test_a_folder_the_user_may_not_write_to_is_a_message(run_and_image, tmp_path, capsys, monkeypatch):
    # tests run as root here, where permissions do not bite: the file system's refusal is simulated
    import pathlib

    _, run, image = run_and_image
    real_mkdir = pathlib.Path.mkdir

    def refused(self, *args, **kwargs):
        if "readonly" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", refused)
    out = tmp_path / "readonly" / "out"
    assert main(["predict", str(run), str(image), "--out", str(out), "--no-progress"]) == 2
    assert "Permission denied; check the permissions, or choose a folder you can write to" in _err(capsys)


def test_a_missing_file_in_a_list_names_it_without_a_misleading_relative_hint(run_and_image, tmp_path):
    _, run, _ = run_and_image
    (tmp_path / "list.txt").write_text("gone.png\n")
    out = tmp_path / "o"
    assert main(["predict", str(run), str(tmp_path / "list.txt"), "--out", str(out), "--no-progress"]) == 3
    message = (out / "errors.csv").read_text()
    assert f"{tmp_path / 'gone.png'}: no such file. Fix: check the path" in message and "relative" not in message


def test_predict_with_the_onnx_engine_but_no_onnxruntime_says_what_to_install(run_and_image, tmp_path, capsys,
                                                                                 monkeypatch):  # fmt: skip
    import builtins

    _, run, image = run_and_image
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    out = tmp_path / "o"
    assert main(["predict", str(run), str(image), "--out", str(out), "--engine", "onnx", "--no-progress"]) == 2
    assert 'pip install "landmark-afl[onnx]"' in _err(capsys)
