"""The ONNX engine against the torch engine (the reference), and the export command."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from landmark_afl.cli import main
from landmark_afl.inference.engines import OnnxEngine, TorchEngine, read_onnx_metadata
from landmark_afl.inference.export import export_onnx
from landmark_afl.inference.stream import InferenceSet, collate_records
from landmark_afl.protocols import load_protocol
from landmark_afl.recipes.landmarks import load_trained_run
from tests.inference.real_inputs import LANDMARKS, make_real_folder, make_run

pytest.importorskip("onnxruntime")

# Stated tolerance of the ONNX engine against PyTorch: heatmaps within 1e-4 (float32 kernels differ in summation
# order), landmarks within 0.01 network-input pixel, peaks within 1e-4.
XY_TOL, MAP_TOL = 0.01, 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    run = load_trained_run(make_run(root))
    return root, run, export_onnx(run, root / "model.onnx")


def test_onnx_matches_torch_on_real_images_with_a_dynamic_batch(exported):
    root, run, path = exported
    good, _ = make_real_folder(root / "in")
    items = [InferenceSet(good, load_protocol(run.protocol), run.codec.input_size)[i] for i in range(len(good))]
    images = collate_records(items)["images"]
    assert images.shape[0] == len(good) == 7  # not the batch size 1 of the export example
    torch_engine, onnx_engine = TorchEngine(run.task, amp="off"), OnnxEngine(path)  # both fp32
    np.testing.assert_allclose(
        onnx_engine.heatmaps(images).numpy(), torch_engine.heatmaps(images).numpy(), atol=MAP_TOL
    )
    xy_t, peak_t = torch_engine(images)
    xy_o, peak_o = onnx_engine(images)
    assert xy_o.shape == (7, len(LANDMARKS), 2)
    np.testing.assert_allclose(xy_o, xy_t, atol=XY_TOL)
    np.testing.assert_allclose(peak_o, peak_t, atol=MAP_TOL)


def test_bf16_engine_stays_close_to_fp32_and_says_so(exported):
    """bf16 autocast (forced, so it runs on any CPU) moves heatmaps and landmarks only a little; the head is fp32."""
    root, run, _ = exported
    good, _ = make_real_folder(root / "in")
    items = [InferenceSet(good, load_protocol(run.protocol), run.codec.input_size)[i] for i in range(len(good))]
    images = collate_records(items)["images"]
    fp32, bf16 = TorchEngine(run.task, amp="off"), TorchEngine(run.task, amp="bf16")
    assert fp32.precision == "fp32" and bf16.precision.startswith("bf16 autocast (CPU")
    maps_32, maps_16 = fp32.heatmaps(images), bf16.heatmaps(images)
    assert maps_16.dtype == maps_32.dtype == torch.float32  # the head and the decoding stay float32
    assert float((maps_16 - maps_32).abs().max()) < 0.02 * float(maps_32.abs().max())
    xy_32, peak_32 = fp32(images)
    xy_16, peak_16 = bf16(images)
    confident = peak_32 > 0.5 * peak_32.max()
    assert np.abs(xy_16 - xy_32)[confident].max() < 1.0  # input pixels
    assert np.abs(peak_16 - peak_32).max() < 0.05 * peak_32.max()


def test_metadata_names_the_checkpoint_and_codec(exported):
    _, run, path = exported
    meta = read_onnx_metadata(path)
    assert meta["landmarks"] == LANDMARKS and meta["codec"] == run.codec.config()
    assert meta["protocol"] == run.protocol and meta["checkpoint"] == str(run.checkpoint)


def test_an_onnx_file_exported_before_the_refinement_was_recorded_decodes_with_the_parabola(exported, tmp_path):
    import json

    import onnx

    from landmark_afl.inference.engines import METADATA_KEY

    _, run, path = exported
    assert OnnxEngine(path).codec.refine == run.codec.refine == "soft-argmax"
    model = onnx.load(str(path))
    (entry,) = [e for e in model.metadata_props if e.key == METADATA_KEY]
    meta = json.loads(entry.value)
    del meta["codec"]["refine"]
    entry.value = json.dumps(meta)
    onnx.save(model, str(tmp_path / "old.onnx"))
    assert OnnxEngine(tmp_path / "old.onnx").codec.refine == "parabola"


def test_predict_engine_onnx_gives_the_torch_results(exported, tmp_path):
    root, run, _ = exported
    mr = root / "in" / "mr" / "MR_small.dcm"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{mr}\n{root / 'in' / 'isbi' / '001.jpg'}\n")
    rows = {}
    for engine in ("torch", "onnx"):
        out = tmp_path / engine
        assert main(["predict", str(run.run_dir), str(listing), "--out", str(out), "--engine", engine,
                     "--workers", "0", "--no-progress", "--amp", "off"]) == 0  # fmt: skip
        with (out / "results.csv").open(newline="") as f:
            rows[engine] = list(csv.DictReader(f))
    assert (tmp_path / "onnx" / "model-best.onnx").is_file()  # exported on the fly into OUT
    for a, b in zip(rows["torch"], rows["onnx"], strict=True):
        for name in LANDMARKS:
            scale = int(a["cols"]) / run.codec.input_size[1]  # input px -> original px
            assert abs(float(a[f"{name}_x"]) - float(b[f"{name}_x"])) <= XY_TOL * scale + 1e-3
            assert abs(float(a[f"{name}_y"]) - float(b[f"{name}_y"])) <= XY_TOL * scale * 2 + 1e-3


def test_export_command_and_a_foreign_onnx_file_is_refused(exported, tmp_path):
    root, run, _ = exported
    out = tmp_path / "cli.onnx"
    assert main(["export", str(run.run_dir), "--onnx", str(out)]) == 0
    assert read_onnx_metadata(out)["checkpoint_sha256"] == read_onnx_metadata(root / "model.onnx")["checkpoint_sha256"]
    from tests.run_fixture import make_untrained_run

    other = make_untrained_run(tmp_path / "other_run", LANDMARKS, seed=5)
    mr = root / "in" / "mr" / "MR_small.dcm"
    argv = ["predict", str(other), str(mr), "--out", str(tmp_path / "o"), "--engine", "onnx", "--onnx", str(out)]
    assert main(argv) == 2  # the ONNX file was exported from another checkpoint
