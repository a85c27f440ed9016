"""scripts/bench_all.py: the README's table comes from the JSON, the paired predict ratio included."""

from __future__ import annotations

from tests.scripts import load_script


def test_summary_gives_both_predict_ratios_with_their_spread():
    bench_all = load_script("bench_all")
    arm = {
        "precision": "fp32", "ratio_median": 0.933, "ratio_min": 0.908, "ratio_max": 0.949, "images_per_s": 17.2,
        "forward_images_per_s": 18.4, "rounds": [{}, {}, {}], "ratio_paired_median": 0.939,
        "ratio_paired_min": 0.935, "ratio_paired_max": 0.972,
    }  # fmt: skip
    unpaired = {k: v for k, v in arm.items() if not k.startswith("ratio_paired")}
    rows = bench_all.summary({"parts": {"predict": {"engines": {"onnx": arm, "torch": unpaired}}}})
    assert (
        "| predict / forward, onnx (fp32), batch 8, 256 px | 0.933 (17.2 / 18.4 img/s, median of 3 rounds, "
        "0.908-0.949) |"
    ) in rows
    assert "| predict / forward, onnx, every batch paired with a pass alone | 0.939 (0.935-0.972) |" in rows
    assert not any("torch, every batch paired" in row for row in rows)  # a JSON from before the paired passes
