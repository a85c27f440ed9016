"""One self-contained HTML page for the side-by-side report: inline CSS, PNG figures embedded as base64, no CDN.

The page opens offline from any folder (it can be mailed as one file).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from landmark_afl.evaluation.report import TABLE_HEADER, mark_references, table_cells

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       padding: 0 16px; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta, ul.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; } td.l, th.l { text-align: left; }
tr.first td { border-top: 2px solid #888; }
td.better { color: #0a7a2f; font-weight: 600; } td.worse { color: #b3261e; font-weight: 600; }
figure { margin: 12px 0 24px; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.grid { display: grid; grid-template-columns: 1fr; gap: 12px; }  /* one plot per row: at its own 1200 px width */
code { background: #f4f4f4; padding: 0 3px; }
"""


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table_html(rows: list[dict]) -> str:
    rows = mark_references([dict(r) for r in rows])
    out = ["<table>", "<tr>" + "".join(f'<th class="{"l" if i < 2 else ""}">{html.escape(h)}</th>'
                                       for i, h in enumerate(TABLE_HEADER)) + "</tr>"]  # fmt: skip
    for row in rows:
        cells = table_cells(row)
        change = row.get("fn_change_pct")
        klass = "" if change is None or change == 0 else ("better" if change < 0 else "worse")
        tds = []
        for i, cell in enumerate(cells):
            cls = "l" if i < 2 else (klass if i == 4 else "")
            tds.append(f'<td class="{cls}">{html.escape(cell)}</td>')
        out.append(f'<tr class="{"first" if row["_is_ref"] else ""}">' + "".join(tds) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_report_html(
    title: str,
    rows: list[dict],
    figures: Sequence[tuple[str, bytes]],
    difficulty: Sequence[tuple[str, bytes]] = (),
    sources: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The report page.

    Args:
        title: page title.
        rows: side-by-side rows (``report.side_by_side``).
        figures: (caption, PNG bytes) shown full width.
        difficulty: (caption, PNG bytes) of the AFL runs' difficulty plots, one per row at full width.
        sources: (label, evaluation folder or run) of every input, listed under the table.
        notes: extra lines shown under the title (threshold, split, ...).
        sections: (heading, note, HTML table) shown after the main table (e.g. the paired comparison).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if notes:
        parts.append('<ul class="meta">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>False negatives, localisation error and detection rate per run and protocol</h2>")
    parts.append(
        '<p class="meta">FN change: false negatives relative to the first run under the same protocol (green: fewer). '
        "MRE and SDR over present and detected landmarks; MRE (all) and SDR (all) over every present landmark at its "
        "heatmap&rsquo;s argmax, detected or not (the ISBI 2015 challenge&rsquo;s rule). Mean &plusmn; std over runs "
        "sharing a label.</p>"
    )
    parts.append(_table_html(rows))
    for heading, note, table in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(f'<p class="meta">{html.escape(note)}</p>')
        parts.append(table)
    if sources:
        parts.append('<p class="meta">Inputs:</p><ul class="meta">')
        parts += [f"<li>{html.escape(label)}: <code>{html.escape(src)}</code></li>" for label, src in sources]
        parts.append("</ul>")
    for caption, png in figures:
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="{png_data_uri(png)}"></figure>')
    if difficulty:
        parts.append("<h2>AFL difficulty scores during training</h2>")
        parts.append('<div class="grid">')
        for caption, png in difficulty:
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="{png_data_uri(png)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_side_by_side(
    out,
    entries: Sequence[tuple[str, dict]],
    sources: Sequence[tuple[str, str]] = (),
    difficulty: Sequence[tuple[str, bytes]] = (),
    title: str = "landmark-afl: false negatives per run and contrast protocol",
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str, str, str]] = (),
) -> list[dict]:
    """Write report.md, report.csv, report.json, report.html and the two figures as PNG files into ``out``.

    Args:
        out: an existing folder.
        entries: (label, report.json document) pairs; equal labels are pooled.
        sources: (label, where the report came from) pairs, listed in the page and in report.json.
        difficulty: (caption, PNG bytes) of the AFL runs' difficulty plots.
        title: the page and Markdown title.
        notes: lines shown under the title.
        sections: (heading, note, Markdown table, HTML table) added after the main table.

    Returns:
        The side-by-side rows.
    """
    import json
    from pathlib import Path

    from landmark_afl.engine.atomic import write_atomic
    from landmark_afl.evaluation.plots import false_negatives_per_landmark_png, threshold_curves_png
    from landmark_afl.evaluation.report import side_by_side, table_markdown
    from landmark_afl.evaluation.side_by_side import side_by_side_csv, side_by_side_document

    out = Path(out)
    rows = side_by_side(entries)
    thresholds = {report["threshold"] for _, report in entries}
    fn_png = false_negatives_per_landmark_png(entries)
    sweep_png = threshold_curves_png(entries, next(iter(thresholds)) if len(thresholds) == 1 else None)
    write_atomic(out / "fn_per_landmark.png", fn_png)
    write_atomic(out / "threshold_curves.png", sweep_png)
    write_atomic(out / "report.csv", side_by_side_csv(rows))
    md = [f"# {title}", "", *(f"- {n}" for n in notes), "", table_markdown(rows)]
    md += ["FN change: false negatives relative to the first run under the same protocol. MRE / SDR over present and "
           "detected landmarks; MRE (all) / SDR (all) over every present landmark at its heatmap's argmax, detected "
           "or not (the ISBI 2015 challenge's rule). Mean ± std over runs sharing a label.", ""]  # fmt: skip
    for heading, note, table_md, _ in sections:
        md += [f"## {heading}", "", note, "", table_md]
    md += ["Inputs:", "", *(f"- {label}: `{src}`" for label, src in sources)]
    md += ["", "![false negatives per landmark](fn_per_landmark.png)", "", "![threshold curves](threshold_curves.png)"]
    write_atomic(out / "report.md", "\n".join(md) + "\n")
    inputs = [{"label": label, "source": src} for label, src in sources]
    doc = side_by_side_document(title, notes, rows, inputs)
    write_atomic(out / "report.json", json.dumps(doc, indent=1, allow_nan=False))
    figures = [("False negatives per landmark", fn_png), ("Threshold sweep", sweep_png)]
    html_sections = [(heading, note, table) for heading, note, _, table in sections]
    page = render_report_html(title, rows, figures, difficulty, sources, notes, html_sections)
    write_atomic(out / "report.html", page)
    return rows
