"""Side-by-side tables of landmark evaluations: the console view, the notes under a table, the difficulty plots."""

from __future__ import annotations

from pathlib import Path


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
