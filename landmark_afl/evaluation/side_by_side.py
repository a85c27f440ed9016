"""Side-by-side tables of landmark evaluations: the console view, the notes under a table, the difficulty plots,
and the versioned files of ``landmark-afl report`` and ``compare`` (``report.json``, ``report.csv``).

``report.json`` (format ``landmark-afl-side-by-side``, version 1)::

    format, version, title, notes: [str], columns: [the row keys, in order], rows: [{column: value}],
    inputs: [{label, source}]

``report.csv`` has one header row, ``columns`` in that order, then one row per run label x protocol (an empty
cell for a missing value). Counts (``n_runs``, ``n_images``, ``present``, ``false_negatives``,
``false_positives``) are integers; in a row pooling several runs they are the mean over the runs, an integer when
it is whole, else a decimal (with ``*_std`` beside it). A later version only appends columns; renaming or removing
one raises the version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SIDE_BY_SIDE_FORMAT = "landmark-afl-side-by-side"
SIDE_BY_SIDE_VERSION = 1
COUNT_FIELDS = ("n_runs", "n_images", "present", "false_negatives", "false_positives")


def schema_rows(rows: list[dict]) -> list[dict]:
    """The side-by-side rows as written to report.json / report.csv: counts that are whole numbers as ints."""
    return [
        {k: int(v) if k in COUNT_FIELDS and isinstance(v, float) and v.is_integer() else v for k, v in row.items()}
        for row in rows
    ]


def side_by_side_document(title: str, notes: Sequence[str], rows: list[dict], inputs: list[dict]) -> dict:
    """The ``report.json`` document of a side-by-side report (see the module docstring)."""
    from landmark_afl.evaluation.report import TABLE_FIELDS

    return {
        "format": SIDE_BY_SIDE_FORMAT,
        "version": SIDE_BY_SIDE_VERSION,
        "title": title,
        "notes": list(notes),
        "columns": list(TABLE_FIELDS),
        "rows": schema_rows(rows),
        "inputs": inputs,
    }


def side_by_side_csv(rows: list[dict]) -> str:
    """``report.csv`` (and compare's ``per_run.csv``): the header row, then the rows (see the module docstring)."""
    from landmark_afl.evaluation.report import table_csv

    return table_csv(schema_rows(rows))


def print_table(console, rows: list[dict]) -> None:
    """The side-by-side table: a rich table on a terminal, Markdown in a log (no wrapping at 80 columns)."""
    from landmark_afl.evaluation.report import table_markdown

    if console.is_terminal:
        console.print(side_by_side_table(rows))
    else:
        print(table_markdown(rows), flush=True)


def side_by_side_table(rows: list[dict]):
    """A rich table of the side-by-side rows, for the console."""
    from rich.table import Table

    from landmark_afl.evaluation.report import TABLE_HEADER, mark_references, table_cells

    table = Table()
    for i, col in enumerate(TABLE_HEADER):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=i > 0)
    for i, row in enumerate(mark_references([dict(r) for r in rows])):
        if row["_is_ref"] and i:
            table.add_section()
        table.add_row(*table_cells(row))
    return table


def collect_difficulty(entries: list[tuple[str, dict, Path]]) -> list[tuple[str, bytes]]:
    """(caption, PNG) of each AFL run's difficulty plot (copied into its evaluation folder, else in the run)."""
    out = []
    for label, report, folder in entries:
        if not report.get("afl"):
            continue
        for path in (folder / "difficulty.png", Path(report["run"]) / "difficulty.png"):
            if path.is_file():
                caption = f"{label}: {Path(report['run']).name} (trained with {report['trained_protocol']})"
                out.append((caption, path.read_bytes()))
                break
    return out


def report_notes(reports: list[dict]) -> list[str]:
    splits = sorted({f"{Path(r['data']).name}/{r['split']}" for r in reports})
    thresholds = sorted({r["threshold"] for r in reports})
    return [
        f"evaluated on: {', '.join(splits)}",
        f"detection threshold: {', '.join(f'{t:g}' for t in thresholds)} (peak response; the training target's peak "
        "is 1)",
    ]
