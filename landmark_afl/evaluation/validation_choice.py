"""The validation figures a comparison chooses its arm by: never the test split.

Each evaluated checkpoint (best.pt, or last.pt) was saved at some epoch; the run's ``metrics.csv`` holds that epoch's
validation false negatives and MRE (what best.pt was selected by). Per protocol and arm this module gives their
mean +- std over seeds and marks the arm to choose: the fewest validation false negatives, ties broken by the lower
validation MRE. Validation splits are small (the phantom's 20 images, ISBI's 15), so the choice is itself noisy;
the tables say how many landmarks it rests on.
"""

from __future__ import annotations

import csv
import html
import statistics
from pathlib import Path

from landmark_afl.evaluation.tables import markdown_table

VALIDATION_HEADER = ("protocol", "arm", "seeds", "epochs", "val false negatives", "val present", "val MRE", "choose")
VALIDATION_NOTE = (
    "The validation split's figures at the epoch of each evaluated checkpoint (mean ± std over seeds; MRE over the "
    "detected landmarks). Choose an arm here, then read the test tables: `choose` marks the fewest validation false "
    "negatives (ties: the lower validation MRE)."
)


def validation_of(report: dict) -> dict:
    """{epoch, val_false_negatives, val_present, val_mre_mm} of the evaluated checkpoint; {} when its run is gone."""
    metrics = Path(str(report.get("run") or "")) / "metrics.csv"
    epoch = report.get("epoch")
    if epoch is None or not metrics.is_file():
        return {}
    with metrics.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch") == str(epoch) and r.get("val_false_negatives")]
    if not rows:
        return {}
    row = rows[-1]  # a resumed epoch's last row
    number = lambda key: float(row[key]) if row.get(key) else None  # noqa: E731
    present = number("val_present")
    return {"epoch": int(epoch), "val_false_negatives": int(float(row["val_false_negatives"])),
            "val_present": None if present is None else int(present), "val_mre_mm": number("val_mre_mm")}  # fmt: skip


def validation_rows(entries: list[tuple[str, str, dict]]) -> list[dict]:
    """One row per protocol x arm from (protocol, arm, evaluation report) of every run, in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    missing: dict[tuple[str, str], list[str]] = {}
    for protocol, arm, report in entries:
        key = (Path(protocol).stem, arm)
        found = validation_of(report)
        groups.setdefault(key, []).append(found)
        if not found:
            missing.setdefault(key, []).append(str(Path(str(report.get("run") or "")) / "metrics.csv"))
    rows = []
    for (protocol, arm), vals in groups.items():
        found = [v for v in vals if v]
        fns = [v["val_false_negatives"] for v in found]
        mres = [v["val_mre_mm"] for v in found if v["val_mre_mm"] is not None]
        rows.append({
            "protocol": protocol, "arm": arm, "n_seeds": len(vals), "n_found": len(found),
            "epochs": [v["epoch"] for v in found], "val_false_negatives": fns,
            "val_present": found[0]["val_present"] if found else None,
            "fn_mean": statistics.mean(fns) if fns else None, "fn_std": statistics.stdev(fns) if len(fns) > 1 else None,
            "mre_mean": statistics.mean(mres) if mres else None,
            "mre_std": statistics.stdev(mres) if len(mres) > 1 else None, "chosen": False,
            "missing": missing.get((protocol, arm), []),
        })  # fmt: skip
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        candidates = [r for r in rows if r["protocol"] == protocol and r["fn_mean"] is not None and r["n_found"]]
        if candidates:
            best = min(candidates, key=lambda r: (r["fn_mean"], r["mre_mean"] if r["mre_mean"] is not None else 1e9))
            best["chosen"] = True
    return rows


def _spread(mean: float, std: float | None, digits: int) -> str:
    """``mean ± std``; one seed has no spread, so its value stands alone."""
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cells(row: dict) -> list[str]:
    if row["fn_mean"] is None:
        where = ", ".join(row.get("missing") or []) or "?"
        return [row["protocol"], row["arm"], str(row["n_seeds"]), "n/a", f"n/a (not found: {where})", "", "", ""]
    mre = "n/a" if row["mre_mean"] is None else _spread(row["mre_mean"], row["mre_std"], 3)
    fns = ", ".join(map(str, row["val_false_negatives"]))
    return [
        row["protocol"], row["arm"], str(row["n_found"]), ", ".join(map(str, row["epochs"])),
        f"{_spread(row['fn_mean'], row['fn_std'], 1)} ({fns})", str(row["val_present"] or ""), mre,
        "yes" if row["chosen"] else "",
    ]  # fmt: skip


def validation_markdown(rows: list[dict]) -> str:
    return markdown_table(VALIDATION_HEADER, [_cells(r) for r in rows])


def validation_html(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in VALIDATION_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
