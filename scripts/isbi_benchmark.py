# Run: python scripts/isbi_benchmark.py ../shared/data/isbi2015 --out bench-isbi --seeds 0,1,2  (--afl: the AFL arm)
"""The ISBI 2015 benchmark end to end: convert, train the recipe, evaluate Test1 once; timed, with one JSON.

Per seed: ``landmark-afl data convert isbi2015 ROOT DATA --val 15`` (once, skipped when DATA is already converted),
``landmark-afl train --data DATA --config configs/isbi2015.yaml seed=S --out OUT/seed-S``, then
``landmark-afl evaluate`` of the best checkpoint (chosen on val) and of the last one on the test split (Test1,
151-300). Each seed writes ``OUT/seed-S.json``; ``OUT/isbi_benchmark.json`` gathers every seed JSON in OUT (so two
invocations with different seeds can share an OUT) with the mean +- std over seeds.

The wall-clock budget (``--budget-min``, default 36: the peer's training time on 2 CPU cores) is a hard limit with
``--enforce-budget``: training is stopped when it runs out and the checkpoints of the finished epochs are evaluated;
without it the time is only recorded (``within_budget``). Training minutes are the train command's wall time,
start to exit (validation each epoch included); peak RSS is that process's maximum resident set.

Each seed JSON keeps the run's resolved config (without the seed); the summary refuses seed files whose commands or
configs differ. Extra ``key=value`` arguments go to ``train``. The recipe trains without AFL (its choice on val);
``--afl`` trains its AFL arm (``afl.enabled=True``), ``--no-afl`` states the recipe's own choice explicitly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("mre_all_mm", "sd_all_mm", "mre_mm", "false_negatives", "present")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "landmark_afl", *args]


def _run(cmd: list[str], log: Path, deadline: float | None = None) -> tuple[int, float, float, bool]:
    """Run ``cmd`` with its output in ``log``: (exit status, wall seconds, peak RSS MiB, stopped at the deadline)."""
    t0 = time.perf_counter()
    stopped = False
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if deadline is not None and time.perf_counter() > deadline and not stopped:
                    proc.terminate()  # the epoch in progress is lost; last.pt / best.pt hold the finished ones
                    stopped = True
                time.sleep(1.0)
        except BaseException:  # Ctrl-C or a failure here: no training left running behind the benchmark
            proc.terminate()
            proc.wait()
            raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait (or warn) again
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024, stopped


def _figures(report_json: Path) -> dict:
    report = json.loads(report_json.read_text())
    (protocol,) = report["protocols"].values()
    out = {key: protocol.get(key) for key in FIGURES}
    out.update(epoch=report["epoch"], sdr_all=protocol["sdr_all"], sdr=protocol["sdr"], decode=report.get("decode"))
    return out


def run_seed(args, data: Path, seed: int, overrides: list[str]) -> dict:
    out = args.out / f"seed-{seed}"
    log = args.out / f"seed-{seed}.log"
    train = _cli(
        "train", "--data", str(data), "--config", str(args.config), "--out", str(out), f"seed={seed}", *overrides
    )
    if args.force:
        train.append("--force")
    budget_s = args.budget_min * 60
    start = time.perf_counter()
    rc, seconds, rss, stopped = _run(train, log, start + budget_s if args.enforce_budget else None)
    if rc != 0 and not (stopped and (out / "checkpoints" / "last.pt").is_file()):
        raise SystemExit(f"training seed {seed} failed (exit {rc}); see {log}")
    result = {
        "seed": seed,
        "train_command": " ".join(train[2:]).replace("landmark_afl", "landmark-afl", 1),
        "train_minutes": round(seconds / 60, 2),
        "budget_minutes": args.budget_min,
        "within_budget": seconds <= budget_s,  # every epoch trained inside the budget (False when it was cut)
        "stopped_at_budget": stopped,
        "train_peak_rss_mb": round(rss, 1),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "config": _run_config(out),
    }
    for which in ("best", "last"):
        ev_dir = args.out / f"seed-{seed}-test-{which}"
        ev = _cli("evaluate", str(out), "--split", "test", "--which", which, "--out", str(ev_dir), "--force")
        rc, _, _, _ = _run(ev, log)
        if rc != 0:
            raise SystemExit(f"evaluating seed {seed} ({which}) failed (exit {rc}); see {log}")
        result[f"test_{which}"] = _figures(ev_dir / "report.json")
    result["epochs_done"] = result["test_last"]["epoch"]
    return result


def _run_config(run_dir: Path) -> dict | None:
    """The run's resolved config (its config.yaml) without the seed: today's defaults included, so that two seed
    files of one command made by different versions of the toolkit are told apart."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text()) or {}
    config.pop("seed", None)
    return config


def _setting(train_command: str) -> str:
    """The train command without its seed and its run folder, and with the config file's name only (a copy of the
    repository elsewhere is the same setting): what every seed of one summary must share."""
    words = train_command.split()
    kept = []
    for before, word in zip(["", *words], words, strict=False):
        if word.startswith("seed=") or word == "--out" or before == "--out":
            continue
        kept.append(Path(word).name if before == "--config" else word)
    return " ".join(kept)


def summarize(out: Path) -> dict:
    """Every ``seed-*.json`` of ``out`` and mean +- std (sample std over seeds) of the Test1 figures.

    Raises:
        SystemExit: the seed files were trained with different settings (e.g. AFL on and off in one OUT).
    """
    paths = sorted(out.glob("seed-*.json"))
    seeds = [json.loads(p.read_text()) for p in paths]
    settings = {_setting(s.get("train_command", "")) for s in seeds}
    if len(settings) > 1:
        raise SystemExit(
            f"{out} holds seed files of {len(settings)} different train commands ({', '.join(map(str, paths))}): "
            "give each setting its own --out"
        )
    configs = {json.dumps(s.get("config"), sort_keys=True) for s in seeds}  # "null": written before configs were
    if len(configs) > 1:
        raise SystemExit(
            f"{out} holds seed files of one train command whose runs resolved to different configs (another version "
            f"of the toolkit's defaults; {', '.join(map(str, paths))}): give each its own --out"
        )
    summary: dict = {"seeds": [s["seed"] for s in seeds], "runs": seeds}

    def stats(values: list[float]) -> dict:
        std = statistics.stdev(values) if len(values) > 1 else None
        return {"mean": statistics.fmean(values), "std": std}

    if seeds:
        summary["train_minutes"] = stats([s["train_minutes"] for s in seeds])
        summary["train_peak_rss_mb"] = max(s["train_peak_rss_mb"] for s in seeds)
        for which in ("best", "last"):
            block = {key: stats([s[f"test_{which}"][key] for s in seeds]) for key in FIGURES}
            for name in ("sdr_all", "sdr"):
                radii = seeds[0][f"test_{which}"][name]
                block[name] = {r: stats([s[f"test_{which}"][name][r] for s in seeds]) for r in radii}
            summary[f"test_{which}"] = block
    return summary


def write_json(path: Path, doc: dict) -> None:
    from landmark_afl.engine.atomic import write_atomic

    write_atomic(path, json.dumps(doc, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="ISBI 2015 folder (RawImage/, AnnotationsByMD/)")
    p.add_argument("--out", type=Path, required=True, help="benchmark folder (runs, evaluations, JSON)")
    p.add_argument("--data", type=Path, help="converted data folder (default: OUT/data, converted when missing)")
    p.add_argument("--config", type=Path, default=REPO / "configs" / "isbi2015.yaml")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, trained one after the other (default: 0)")
    arm = p.add_mutually_exclusive_group()
    arm.add_argument("--no-afl", action="store_true", help="without AFL (afl.enabled=False; the recipe's own choice)")
    arm.add_argument(
        "--afl", action="store_true", help="with AFL (afl.enabled=True: the recipe's centred, gamma-1 arm)"
    )
    p.add_argument("--budget-min", type=float, default=36.0, help="training wall-clock budget in minutes")
    p.add_argument("--enforce-budget", action="store_true", help="stop training when the budget runs out")
    p.add_argument("--force", action="store_true", help="replace run folders of the same seeds")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="extra train settings")
    args = p.parse_intermixed_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data or args.out / "data"
    if not (data / "dataset.yaml").is_file():
        cmd = _cli("data", "convert", "isbi2015", str(args.root), str(data), "--val", "15")
        rc, seconds, _, _ = _run(cmd, args.out / "convert.log")
        if rc != 0:
            raise SystemExit(f"converting {args.root} failed (exit {rc}); see {args.out / 'convert.log'}")
        print(f"converted {args.root} -> {data} in {seconds:.0f} s")
    overrides = list(args.overrides) + (["afl.enabled=False"] if args.no_afl else [])
    overrides += ["afl.enabled=True"] if args.afl else []
    for seed in (int(s) for s in args.seeds.split(",")):
        result = run_seed(args, data, seed, overrides)
        write_json(args.out / f"seed-{seed}.json", result)
        best = result["test_best"]
        print(
            f"seed {seed}: trained {result['train_minutes']:.1f} min (budget {args.budget_min:g}), Test1 best epoch "
            f"{best['epoch']}: MRE every landmark {best['mre_all_mm']:.3f} mm, detected {best['mre_mm']:.3f} mm, "
            f"false negatives {best['false_negatives']}/{best['present']}, "
            f"peak RSS {result['train_peak_rss_mb']:.0f} MiB"
        )
    summary = summarize(args.out)
    write_json(args.out / "isbi_benchmark.json", summary)
    m = summary["test_best"]["mre_all_mm"]
    spread = f" +- {m['std']:.3f}" if m["std"] is not None else ""
    print(f"{len(summary['seeds'])} seed(s) in {args.out}: Test1 MRE every landmark {m['mean']:.3f}{spread} mm")
    print(f"wrote {args.out / 'isbi_benchmark.json'}")


if __name__ == "__main__":
    main()
