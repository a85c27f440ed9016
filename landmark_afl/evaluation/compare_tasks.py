"""``compare --task T`` for the tasks without contrast protocols: arms x seeds, the recipe's metrics, mean +- std.

Layout of the comparison folder::

    OUT/compare.json                      the settings (a resumed comparison must use the same ones)
    OUT/runs/<arm>-s<seed>/               training run folders
    OUT/evaluations/<arm>-s<seed>.json    the recipe's ``evaluate`` of best.pt (or last.pt) on the split
    OUT/report/                           report.md / .csv / .json / .html (mean +- std over seeds), per_run.csv

Resumable as the landmark comparison: finished runs are skipped, shorter ones resumed, and an evaluation is redone
only when its run was trained in this invocation.

``report/report.json`` (format ``landmark-afl-task-comparison``, version 1): ``format``, ``version``, ``title``,
``notes``, ``arms`` (per arm: ``arm``, ``n_seeds`` (int), ``seeds``, ``<metric>_mean``, ``<metric>_std``), ``paired``
(``arm``, ``reference``, ``metric``, ``n_seeds``, ``diff``, ``ci``, ``significant``), ``runs`` (``arm``, ``seed``,
``run``, ``metrics``). ``report.csv``: the header ``arm,n_seeds,<metric>_mean,<metric>_std,...`` then one row per arm.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import shutil
from pathlib import Path

from landmark_afl.engine.atomic import write_atomic

TASK_COMPARISON_FORMAT = "landmark-afl-task-comparison"
TASK_COMPARISON_VERSION = 1


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1) if len(finite) > 1 else 0.0
    return mean, math.sqrt(var)


def summarize_arms(per_run: list[dict], metrics: tuple[str, ...]) -> list[dict]:
    """One row per arm: ``{"arm", "n_seeds", "<metric>_mean", "<metric>_std", ...}`` (sample std, n-1)."""
    arms: dict[str, list[dict]] = {}
    for row in per_run:
        arms.setdefault(row["arm"], []).append(row)
    out = []
    for arm, rows in arms.items():
        entry = {"arm": arm, "n_seeds": len(rows), "seeds": [r["seed"] for r in rows]}
        for m in metrics:
            entry[f"{m}_mean"], entry[f"{m}_std"] = _mean_std([r["metrics"].get(m) for r in rows])
        out.append(entry)
    return out


# two-sided 95 % quantiles of Student's t for 1..9 degrees of freedom (then the normal's 1.96 is within 5 %)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def paired_over_seeds(per_run: list[dict], metrics: tuple[str, ...], reference: str) -> list[dict]:
    """Each arm minus the reference, seed by seed: the mean difference and its 95 % t-interval over seeds."""
    by = {(r["arm"], r["seed"]): r["metrics"] for r in per_run}
    arms = [a for a in dict.fromkeys(r["arm"] for r in per_run) if a != reference]
    out = []
    for arm in arms:
        for m in metrics:
            diffs = [by[(arm, s)][m] - by[(reference, s)][m] for a, s in by if a == arm and (reference, s) in by]
            n = len(diffs)
            if not n:
                continue
            mean = sum(diffs) / n
            sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
            half = _T95[min(n - 1, len(_T95)) - 1] * sd / math.sqrt(n) if n > 1 else float("nan")
            significant = n > 1 and (mean - half > 0 or mean + half < 0)
            out.append({"arm": arm, "reference": reference, "metric": m, "n_seeds": n, "diff": mean,
                        "ci": [mean - half, mean + half], "significant": significant})  # fmt: skip
    return out


def _signed(value: float) -> str:
    """``+0.0073``; a difference that rounds to zero prints as ``+0.0000``, never ``-0.0000``."""
    return f"{round(value, 4) + 0.0:+.4f}"


def paired_markdown(rows: list[dict]) -> str:
    lines = ["| arm | metric | seeds | change vs reference [95 % CI] | significant |", "|---|---|---|---|---|"]
    for r in rows:
        ci = "n/a" if not math.isfinite(r["ci"][0]) else f"[{_signed(r['ci'][0])}, {_signed(r['ci'][1])}]"
        lines.append(f"| {r['arm']} | {r['metric']} | {r['n_seeds']} | {_signed(r['diff'])} {ci} | "
                     f"{'yes' if r['significant'] else 'no'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _fmt(mean: float, std: float) -> str:
    return "n/a" if not math.isfinite(mean) else f"{mean:.4g} +- {std:.2g}"


def table_markdown(rows: list[dict], metrics: tuple[str, ...]) -> str:
    lines = ["| arm | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for r in rows:
        cells = [_fmt(r[f"{m}_mean"], r[f"{m}_std"]) for m in metrics]
        lines.append(f"| {r['arm']} | {r['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_csv(rows: list[dict], metrics: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["arm", "n_seeds", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]])
    for r in rows:
        writer.writerow([r["arm"], r["n_seeds"], *[r[f"{m}_{s}"] for m in metrics for s in ("mean", "std")]])
    return buf.getvalue()


def table_html(rows: list[dict], metrics: tuple[str, ...], title: str, notes: list[str], paired=()) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ("arm", "seeds", *metrics))
    body = "".join(
        "<tr>" + f"<td>{html.escape(r['arm'])}</td><td>{r['n_seeds']}</td>"
        + "".join(f"<td>{html.escape(_fmt(r[f'{m}_mean'], r[f'{m}_std']))}</td>" for m in metrics) + "</tr>"
        for r in rows
    )  # fmt: skip
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    paired_rows = "".join(
        f"<tr><td>{html.escape(r['arm'])}</td><td>{html.escape(r['metric'])}</td><td>{r['n_seeds']}</td>"
        f"<td>{_signed(r['diff'])} [{_signed(r['ci'][0])}, {_signed(r['ci'][1])}]</td>"
        f"<td>{'yes' if r['significant'] else 'no'}</td></tr>"
        for r in paired
    )
    paired_table = (
        "<h2>Paired by seed, against the reference arm</h2><table><tr><th>arm</th><th>metric</th><th>seeds</th>"
        f"<th>change [95 % t-interval]</th><th>significant</th></tr>{paired_rows}</table>"
        if paired
        else ""
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr>{head}</tr>{body}</table><ul>{items}</ul>{paired_table}"
        "</body></html>\n"
    )


def run_task_comparison(recipe, settings, out: Path, console=None) -> int:
    """Train every arm with every seed, evaluate each on ``settings.split``, write the report. 0, or 3 on failures."""
    from rich.console import Console

    from landmark_afl.engine.trainer import NonFiniteLossError
    from landmark_afl.evaluation.compare import arm_slug, check_settings, run_config, train_arm

    console = console or Console()
    out = Path(out)
    if settings.data is not None:
        settings.data = str(Path(settings.data).expanduser().resolve())
    settings.split = settings.split or recipe.splits[0]
    if settings.split not in recipe.splits:
        raise ValueError(f"--split {settings.split!r}: task {recipe.name} evaluates on {', '.join(recipe.splits)}")
    if settings.which != "best":
        raise ValueError(f"--which {settings.which}: task {recipe.name} compares best.pt (the validation choice) only")
    check_settings(settings, out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "compare.json", json.dumps(settings.key(), indent=1))
    metrics = recipe.report_metrics
    per_run, failures = [], []
    arms = settings.arms or recipe.arms
    total, done = len(arms) * len(settings.seeds), 0
    for seed in settings.seeds:
        for label, arm in arms.items():
            done += 1
            name = f"{arm_slug(label)}-s{seed}"
            run_dir, eval_path = out / "runs" / name, out / "evaluations" / f"{name}.json"
            cfg = run_config(recipe, settings, arm, seed)
            try:
                trained = train_arm(recipe, cfg, run_dir, name, f"[{done}/{total}]", console)
            except NonFiniteLossError as err:
                failures.append(f"{name}: training failed ({err})")
                continue
            if trained or not eval_path.is_file():
                result = recipe.evaluate(run_dir, settings.split)
                eval_path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(eval_path, json.dumps(result, indent=1))
            else:
                result = json.loads(eval_path.read_text())
                console.log(f"[{done}/{total}] {name}: evaluation already written, skipped")
            console.log(f"[{done}/{total}] {name}: " + ", ".join(f"{m} {result.get(m)}" for m in metrics))
            per_run.append({"arm": label, "seed": seed, "run": str(run_dir), "metrics": result})
    if not per_run:
        console.print("[red]no run finished; nothing to report[/red]")
        return 1
    rows = summarize_arms(per_run, metrics)
    report_dir = out / "report"
    if report_dir.exists():
        shutil.rmtree(report_dir)
    report_dir.mkdir()
    title = f"landmark-afl compare --task {recipe.name}: {', '.join(arms)} on {settings.split}"
    notes = [f"seeds {settings.seeds}, epochs {settings.epochs}, split {settings.split}, checkpoint best.pt "
             f"(chosen on the validation split)", "mean +- sample standard deviation over seeds"]  # fmt: skip
    if settings.overrides:
        notes.append("training overrides: " + " ".join(settings.overrides))
    paired = paired_over_seeds(per_run, metrics, next(iter(arms)))
    paired_md = paired_markdown(paired) if paired else ""
    write_atomic(report_dir / "report.md", f"# {title}\n\n" + table_markdown(rows, metrics) + "\n" +
                 "".join(f"- {n}\n" for n in notes) + (f"\n## Paired by seed, against {next(iter(arms))}\n\n"
                 + paired_md if paired else ""))  # fmt: skip
    write_atomic(report_dir / "report.csv", table_csv(rows, metrics))
    document = {"format": TASK_COMPARISON_FORMAT, "version": TASK_COMPARISON_VERSION, "title": title, "notes": notes,
                "arms": rows, "paired": paired, "runs": per_run}  # fmt: skip
    write_atomic(report_dir / "report.json", json.dumps(document, indent=1))
    write_atomic(report_dir / "report.html", table_html(rows, metrics, title, notes, paired))
    run_rows = ["arm,seed," + ",".join(metrics)] + [
        f"{r['arm']},{r['seed']}," + ",".join(str(r["metrics"].get(m, "")) for m in metrics) for r in per_run
    ]
    write_atomic(report_dir / "per_run.csv", "\n".join(run_rows) + "\n")
    print(table_markdown(rows, metrics) + ("\n" + paired_md if paired else ""), flush=True)
    console.print(f"wrote {report_dir}/report.md, report.csv, report.json, report.html, per_run.csv")
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    return 3 if failures else 0
