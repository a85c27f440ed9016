"""Append-only outputs of ``predict``: results.csv, results.jsonl and errors.csv, safe against a kill at any moment.

* Each row is written with a single ``os.write`` on a file opened with ``O_APPEND``: a killed process leaves whole
  rows, or at worst one truncated last line (no newline), which :func:`repair_tail` cuts off on the next start.
  The files are ``fsync``-ed after every batch (:meth:`OutputWriter.sync`), so a power loss loses at most one batch.
  ``predict`` does the writing and the fsyncs on its write-behind thread (:mod:`.write_behind`), one batch at a time,
  in order, while the network runs the next batch (the first batch in the loop's own thread).
* results.jsonl is written before results.csv for each image, so results.csv is the commit log: an image counts
  as done once its results.csv row (or its errors.csv row) exists, and a jsonl line without its csv row (a kill
  between the two writes) is dropped on the next start.
* Resume: :func:`done_paths` reads the paths already in results.csv and errors.csv; ``predict`` skips them.
* Schema: every results.jsonl line is one JSON object whose first key is ``"schema": RESULTS_SCHEMA`` (1: the
  fields of docs/CONTRACTS.md); a line without it was written before the field existed and has schema 1's fields.
  Resume and merging go by ``path`` alone, so folders of either kind (or both) resume alike.
* Order: rows are appended in path order; :func:`finalize` merges the part files of torchrun ranks and re-sorts by
  path whenever the files are not already sorted, so the final order never depends on workers or ranks.
* Paths: any name the file system allows is written losslessly as one line of UTF-8 text (:func:`output_path`):
  every byte that is not part of valid UTF-8 (an old system's Latin-1 name), every control character (newline,
  tab, ...) and ``%`` itself are percent-encoded (``caf\xe9.dcm`` -> ``caf%E9.dcm``, ``a%b`` -> ``a%25b``);
  :func:`input_path` turns the text back into the path.
* Damage: on the next start, rows that are not whole rows of their file (wrong number of columns, NUL bytes left by
  a crash, an empty path) and jsonl lines that are not JSON are dropped, and an image keeps its results.csv row only
  while its results.jsonl line is intact, so a damaged image is predicted again instead of blocking the resume.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

RESULTS_CSV = "results.csv"
RESULTS_JSONL = "results.jsonl"
ERRORS_CSV = "errors.csv"
ERROR_COLUMNS = ["path", "error_type", "message"]
PARTS_DIR = "parts"
RESULTS_SCHEMA = 1  # the "schema" of each results.jsonl line (see the module doc)


_KEEP_UNQUOTED = frozenset(range(0x20, 0x7F)) - {ord("%")}


def output_path(path: str | os.PathLike) -> str:
    """The text a path is written as in the outputs: valid UTF-8 on one line, losslessly (see the module doc).

    Example:
        >>> output_path(os.fsdecode(b"/in/caf\xe9 50%.dcm"))
        '/in/caf%E9 50%25.dcm'
        >>> input_path(output_path("/in/ünïcode\nname.png")) == "/in/ünïcode\nname.png"
        True
    """
    raw = os.fsencode(path)
    if all(b in _KEEP_UNQUOTED for b in raw):
        return raw.decode("ascii")  # the usual case
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not valid UTF-8
            out.append(f"%{code - 0xDC00:02X}")
        elif code < 0x20 or code == 0x7F or ch == "%":
            out.append(f"%{code:02X}")
        else:
            out.append(ch)
    return "".join(out)


def input_path(text: str) -> str:
    """The file system path of an output's path text (the inverse of :func:`output_path`)."""
    from urllib.parse import unquote_to_bytes

    return os.fsdecode(unquote_to_bytes(text)) if "%" in text else text


def path_key(path: str) -> tuple[str, ...]:
    """Sort key of output rows (path text): the path's components (the order of ``sorted(list_of_Paths)``)."""
    return Path(input_path(path)).parts


def csv_line(values: list) -> str:
    """One CSV row as text (with its newline), quoted as needed."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def repair_tail(path: Path) -> bool:
    """Cut a truncated last line (a kill in the middle of a write) off ``path``; True when something was cut."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        block = min(size, 1 << 16)
        end = size
        while True:  # find the last newline, reading backwards
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                break
            if start == 0:
                f.truncate(0)
                break
            end = start
    return True


def read_csv_rows(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """(header, rows) of a CSV file; (None, []) when it is missing or empty. Only whole rows are returned: rows with
    the header's number of columns and a path without NUL bytes (damage is dropped, see the module doc)."""
    header, rows, _ = _read_csv(path)
    return header, rows


def _read_csv(path: Path) -> tuple[list[str] | None, list[list[str]], int]:
    """(header, whole rows, number of damaged rows dropped)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None, [], 0
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows, bad = [], 0
        for row in reader:
            if not row:
                continue
            if header is None or len(row) != len(header) or not row[0] or "\0" in row[0]:
                bad += 1
                continue
            rows.append(row)
        return header, rows, bad


def read_jsonl(path: Path) -> list[dict]:
    """The intact records of a jsonl file (lines that are not a JSON object with a ``path`` are dropped)."""
    return _read_jsonl(path)[0]


def _read_jsonl(path: Path) -> tuple[list[dict], int]:
    if not path.is_file():
        return [], 0
    records, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                records.append(record)
            else:
                bad += 1
    return records, bad


def repair_dir(folder: Path) -> None:
    """Make a results folder consistent after a kill or damage: cut truncated lines, drop damaged rows and lines,
    and keep an image's results.csv row and results.jsonl line only while both are intact."""
    for name in (RESULTS_CSV, RESULTS_JSONL, ERRORS_CSV):
        repair_tail(folder / name)
    results_header, results, bad_results = _read_csv(folder / RESULTS_CSV)
    errors_header, errors, bad_errors = _read_csv(folder / ERRORS_CSV)
    records, bad_records = _read_jsonl(folder / RESULTS_JSONL)
    in_jsonl = {r["path"] for r in records}
    kept_results = [row for row in results if row[0] in in_jsonl]
    in_csv = {row[0] for row in kept_results}
    kept_records = [r for r in records if r["path"] in in_csv]
    # jsonl first, csv last: results.csv stays the commit log while the files are being replaced
    if bad_records or len(kept_records) != len(records):
        _write_atomic(folder / RESULTS_JSONL, "".join(json.dumps(r) + "\n" for r in kept_records))
    if bad_results or len(kept_results) != len(results):
        _write_atomic(folder / RESULTS_CSV, "".join(csv_line(r) for r in [results_header, *kept_results]))
    if bad_errors:
        _write_atomic(folder / ERRORS_CSV, "".join(csv_line(r) for r in [errors_header, *errors]))


def done_paths(folder: Path) -> set[str]:
    """Paths that already have a row in results.csv or errors.csv of ``folder`` (after :func:`repair_dir`)."""
    done = {row[0] for row in read_csv_rows(folder / RESULTS_CSV)[1]}
    return done | {row[0] for row in read_csv_rows(folder / ERRORS_CSV)[1]}


def part_dirs(out_dir: Path) -> list[Path]:
    """The per-rank folders of a torchrun job (``OUT/parts/rank-NNN``), sorted."""
    parts = Path(out_dir) / PARTS_DIR
    return sorted(p for p in parts.glob("rank-*") if p.is_dir()) if parts.is_dir() else []


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _merge_csv(paths: list[Path], header: list[str]) -> tuple[list[list[str]], bool]:
    """Rows of every file in ``paths`` with ``header``, one per path, sorted; and whether a rewrite is needed."""
    rows, seen, changed = [], set(), len(paths) > 1
    for path in paths:
        file_header, file_rows = read_csv_rows(path)
        if file_header is None:
            continue
        if file_header != header:
            raise ValueError(f"{path} has other columns than {paths[0]}; it belongs to another job: move it away")
        for row in file_rows:
            if row[0] in seen:
                changed = True
                continue
            seen.add(row[0])
            rows.append(row)
    keys = [path_key(r[0]) for r in rows]
    if any(a > b for a, b in zip(keys, keys[1:], strict=False)):
        changed = True
        rows.sort(key=lambda r: path_key(r[0]))
    return rows, changed


def finalize(out_dir: str | Path, results_header: list[str]) -> None:
    """Merge the part files of torchrun ranks into OUT's files and sort every file by path (atomic replaces).

    Nothing is rewritten when there are no parts and the files are already sorted. The part folders are removed
    once their rows are in the final files. A kill in the middle is safe: parts are removed last, and a repeated
    merge de-duplicates by path.
    """
    out_dir = Path(out_dir)
    parts = part_dirs(out_dir)
    for folder in [out_dir, *parts]:
        repair_dir(folder)
    folders = [out_dir, *parts]
    results, changed_r = _merge_csv([f / RESULTS_CSV for f in folders], results_header)
    errors, changed_e = _merge_csv([f / ERRORS_CSV for f in folders], ERROR_COLUMNS)
    if changed_r:
        by_path: dict[str, dict] = {}
        for folder in folders:
            for record in read_jsonl(folder / RESULTS_JSONL):
                by_path.setdefault(record["path"], record)
        # jsonl first, csv last: results.csv stays the commit log while files are being replaced
        lines = [json.dumps(by_path[r[0]]) + "\n" for r in results if r[0] in by_path]
        _write_atomic(out_dir / RESULTS_JSONL, "".join(lines))
    if changed_e:
        _write_atomic(out_dir / ERRORS_CSV, "".join(csv_line(r) for r in [ERROR_COLUMNS, *errors]))
    if changed_r:
        _write_atomic(out_dir / RESULTS_CSV, "".join(csv_line(r) for r in [results_header, *results]))
    for folder in parts:
        shutil.rmtree(folder)
    if parts and not any((out_dir / PARTS_DIR).iterdir()):
        (out_dir / PARTS_DIR).rmdir()


class OutputWriter:
    """Appends result and error rows to one folder (OUT itself, or a rank's part folder).

    Args:
        folder: where results.csv, results.jsonl and errors.csv live (created when missing).
        results_header: the columns of results.csv (checked against an existing file).

    Example:
        >>> import tempfile
        >>> w = OutputWriter(Path(tempfile.mkdtemp()), ["path", "a_x"])
        >>> w.write_error("/x.dcm", "ImageReadError", "/x.dcm: no pixel data"); w.close()
        >>> sorted(done_paths(w.folder))
        ['/x.dcm']
    """

    def __init__(self, folder: Path, results_header: list[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.results_header = list(results_header)
        header, _ = read_csv_rows(self.folder / RESULTS_CSV)
        if header is not None and header != self.results_header:
            raise ValueError(
                f"{self.folder / RESULTS_CSV} has other columns (another run, landmark set or --keep-phi setting); "
                "give a new --out folder"
            )
        self._fds = {
            RESULTS_CSV: self._open(RESULTS_CSV, self.results_header),
            RESULTS_JSONL: self._open(RESULTS_JSONL, None),
            ERRORS_CSV: self._open(ERRORS_CSV, ERROR_COLUMNS),
        }

    def _open(self, name: str, header: list[str] | None) -> int:
        path = self.folder / name
        repair_tail(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if header is not None and os.fstat(fd).st_size == 0:
            self._write(fd, csv_line(header))
        return fd

    @staticmethod
    def _write(fd: int, text: str) -> None:
        # paths arrive as output_path() text; a stray undecodable byte elsewhere (a message quoting a file name,
        # a DICOM header field) is written as \xNN rather than failing the row
        data = text.encode("utf-8", "backslashreplace")
        written = os.write(fd, data)
        while written < len(data):  # a short write on a regular file is rare; finish the row
            written += os.write(fd, data[written:])

    def write_result(self, csv_values: list, record: dict) -> None:
        """One image's results: its jsonl line (``schema`` first), then its csv row (the commit)."""
        self._write(self._fds[RESULTS_JSONL], json.dumps({"schema": RESULTS_SCHEMA, **record}) + "\n")
        self._write(self._fds[RESULTS_CSV], csv_line(csv_values))

    def write_error(self, path: str, error_type: str, message: str) -> None:
        """One image's error row (``path``: the output_path text)."""
        self._write(self._fds[ERRORS_CSV], csv_line([path, error_type, " ".join(message.split())]))

    def sync(self) -> None:
        """fsync every file (called once per batch)."""
        for fd in self._fds.values():
            os.fsync(fd)

    def close(self) -> None:
        if not self._fds:
            return
        self.sync()
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}
