"""The predict loop: stream images through an engine and append one row per image, resumably and in path order.

``run_predict`` is what ``landmark-afl predict`` calls; it can be used from Python the same way::

    run = load_trained_run("runs/high-afl")
    paths = collect_inputs("/data/pacs_export")
    summary = run_predict(paths, "out", run, TorchEngine(run.task), load_protocol(run.protocol))
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landmark_afl.data.letterbox import to_image_coords
from landmark_afl.engine.checkpoint import checkpoint_digest
from landmark_afl.inference.distributed import DistContext
from landmark_afl.inference.phi import header_columns, scrub
from landmark_afl.inference.write_behind import WriteBehind
from landmark_afl.inference.writer import (
    ERRORS_CSV,
    OutputWriter,
    done_paths,
    finalize,
    output_path,
    read_csv_rows,
)

SETTINGS_FILE = "predict.json"
# what an OUT folder written before these settings were recorded was made with (fp32, the torch engine); a key
# still absent from an old predict.json is not checked (--dicom did not exist: such a folder has no DICOM outputs)
OLDER_OUT_DEFAULTS = {"precision": "fp32", "dicom": False}
LANDMARK_FIELDS = ("x", "y", "x_mm", "y_mm", "peak", "present")


@dataclass(frozen=True)
class PredictOptions:
    """Settings of a predict job (the CLI flags).

    Attributes:
        batch_size: images per forward pass; a shorter batch (the last one, or one with unreadable files) is
            filled up with blank images, so that every pass has this shape and an image's result depends on the
            image alone, not on which images shared its batch: a resumed job writes the bytes an uninterrupted one
            would have (oneDNN, for one, takes another convolution algorithm for a batch of one).
        workers: read ahead of the network (0 = read in the main process; otherwise at most this many DataLoader
            worker processes, as ``reader`` says).
        reader: who reads ahead: "thread", "process" or "auto" (:func:`.stream.stream_batches`).
        threshold: peak response at or above which a landmark is present (None = the run's detect_threshold).
        overlays: also write OUT/overlays/<path under the input root>.png.
        overlay_root: the folder overlay names are taken relative to.
        keep_phi: write patient name / ID / birth date of DICOM files (never by default).
        fallback_spacing: (row, col) mm for images without spacing, or None (their mm stay empty, and a one-time
            notice says which option gives them).
        spacing_label: the ``spacing_source`` written for ``fallback_spacing`` ("--spacing", or "dataset.yaml"
            for ``--spacing run``: the run's data set spacing).
        dicom: also write OUT/dicom/<name>.gsps.dcm and .sr.dcm per DICOM input (:mod:`.dicom_outputs`).
        progress: show a progress bar (rank 0 only).
        write_behind: write each batch's rows, fsync, DICOM outputs and overlays on a thread of their own while
            the network runs the next batch (:mod:`.write_behind`; the first batch is written in the loop's thread);
            False writes them all in the loop's thread between the forward passes (the same bytes; for benchmarks).
    """

    batch_size: int = 8
    workers: int = 2
    reader: str = "auto"
    threshold: float | None = None
    overlays: bool = False
    overlay_root: Path | None = None
    keep_phi: bool = False
    fallback_spacing: tuple[float, float] | None = None
    spacing_label: str = "--spacing"
    dicom: bool = False
    progress: bool = True
    write_behind: bool = True

    def __post_init__(self) -> None:
        from landmark_afl.inference.stream import check_reader

        check_reader(self.reader)


@dataclass
class PredictSummary:
    """What a predict job did, over all ranks (``failed_total`` and ``results_total`` count the whole of OUT)."""

    inputs: int = 0
    skipped: int = 0
    processed: int = 0
    failed: int = 0
    seconds: float = 0.0
    results_total: int = 0
    failed_total: int = 0
    failed_paths: list[str] = field(default_factory=list)
    no_spacing: int = 0  # results of this job without mm (no spacing in the image, no --spacing)
    dicom_images: int = 0  # images of this job with DICOM outputs written (--dicom)
    dicom_skipped: int = 0  # DICOM inputs of this job whose outputs (or one of them) were not written
    dicom_not_dicom: int = 0  # non-DICOM inputs of this job (no DICOM outputs, by design)

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def result_columns(landmarks: list[str], keep_phi: bool = False) -> list[str]:
    """The columns of results.csv: one row per image, six columns per landmark."""
    base = ["path", "rows", "cols", "spacing_row_mm", "spacing_col_mm", "spacing_source", "threshold", "n_present"]
    per_landmark = [f"{name}_{f}" for name in landmarks for f in LANDMARK_FIELDS]
    return base + header_columns(keep_phi) + per_landmark


def _num(value: float, digits: int) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def format_result(
    record: dict, xy: np.ndarray, peaks: np.ndarray, threshold: float, landmarks: list[str], keep_phi: bool
) -> tuple[list, dict]:
    """(csv values, json record) of one image; ``xy`` [K, 2] in original pixels, ``peaks`` [K].

    Millimetres are measured from the centre of the top-left pixel: ``x_mm = x * column spacing``,
    ``y_mm = y * row spacing``; they are empty (null) when the spacing is unknown.
    """
    row_mm, col_mm = (float(s) for s in record["spacing"])
    present = peaks >= threshold
    marks = []
    for k, name in enumerate(landmarks):
        x, y = float(xy[k, 0]), float(xy[k, 1])
        marks.append(
            {
                "name": name,
                "x": _num(x, 3),
                "y": _num(y, 3),
                "x_mm": _num(x * col_mm, 4),
                "y_mm": _num(y * row_mm, 4),
                "peak": _num(float(peaks[k]), 5),
                "present": bool(present[k]),
            }
        )
    header = scrub(dict(record["header"]), keep_phi)
    spacing = [_num(row_mm, 6), _num(col_mm, 6)] if math.isfinite(row_mm) and math.isfinite(col_mm) else None
    json_record = {
        "path": output_path(record["path"]),
        "rows": record["shape"][0],
        "cols": record["shape"][1],
        "spacing_mm": spacing,
        "spacing_source": record["spacing_source"],
        "threshold": threshold,
        "n_present": int(present.sum()),
        "dicom": header or None,
        "landmarks": marks,
    }
    blank = "" if spacing is None else None
    values = [
        json_record["path"], record["shape"][0], record["shape"][1],
        blank if blank is not None else spacing[0], blank if blank is not None else spacing[1],
        record["spacing_source"], threshold, int(present.sum()),
        *[header.get(c, "") for c in header_columns(keep_phi)],
    ]  # fmt: skip
    for mark in marks:
        values += ["" if mark[f] is None else (int(mark[f]) if f == "present" else mark[f]) for f in LANDMARK_FIELDS]
    return values, json_record


def check_settings(out_dir: Path, settings: dict) -> None:
    """Write OUT/predict.json, or check that an existing one (an earlier run into OUT) has the same settings."""
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        old = {**OLDER_OUT_DEFAULTS, **json.loads(path.read_text())}
        diff = [k for k in settings if k in old and old[k] != settings[k]]
        if diff:
            details = "; ".join(f"{k}: {old.get(k)!r} -> {settings[k]!r}" for k in diff)
            raise ValueError(
                f"{out_dir} holds results made with other settings ({details}); resume with the same settings or "
                "give a new --out folder"
            )
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    tmp.replace(path)


def job_settings(
    run,
    digest: str,
    protocol_name: str,
    threshold: float,
    keep_phi: bool,
    engine=None,
    fallback_spacing=None,
    overlays: bool | None = None,
    dicom: bool | None = None,
) -> dict:
    """The settings that must not change between a run into OUT and its resumption (``digest``: the checkpoint's
    SHA-256, ``engine.checkpoint.checkpoint_digest``).

    ``engine`` adds its name and precision (an fp32 and a bf16 pass differ in the last digits), and
    ``fallback_spacing`` the ``--spacing`` (rows with and without mm must not mix in one results.csv), and
    ``overlays`` whether every image gets an overlay PNG, ``dicom`` whether every DICOM image gets its
    presentation state and report.
    """
    return {
        "checkpoint": str(Path(run.checkpoint).resolve()),
        "checkpoint_sha256": digest,
        "landmarks": list(run.landmarks),
        "input_size": list(run.task.codec.input_size),
        "protocol": protocol_name,
        "threshold": threshold,
        "keep_phi": keep_phi,
        **({} if engine is None else {"engine": engine.name, "precision": engine.precision}),
        "fallback_spacing": None if fallback_spacing is None else [float(v) for v in fallback_spacing],
        **({} if overlays is None else {"overlays": bool(overlays)}),
        **({} if dicom is None else {"dicom": bool(dicom)}),
    }


def run_predict(
    paths: list[Path],
    out_dir: str | Path,
    run,
    engine,
    protocol,
    options: PredictOptions | None = None,
    ctx: DistContext | None = None,
    console=None,
) -> PredictSummary:
    """Predict every image of ``paths`` not already in OUT; returns what was done.

    Args:
        paths: the inputs, sorted (``collect_inputs``).
        out_dir: OUT; results.csv / results.jsonl / errors.csv are appended there.
        run: the ``TrainedRun`` (landmark names, codec, detect threshold).
        engine: a ``TorchEngine`` or ``OnnxEngine``.
        protocol: the contrast protocol applied to every image.
        options: batch size, workers, threshold...
        ctx: the torchrun context (None = a single process).
        console: a rich Console for the progress bar and messages.

    Raises:
        ValueError: OUT holds results of another run or other settings.
    """
    from landmark_afl.inference.overlay import write_overlay
    from landmark_afl.inference.stream import InferenceSet, stream_batches

    options = options or PredictOptions()
    ctx = ctx or DistContext()
    out_dir = Path(out_dir)
    landmarks = list(run.landmarks)
    threshold = float(run.task.detect_threshold if options.threshold is None else options.threshold)
    header = result_columns(landmarks, options.keep_phi)
    digest = checkpoint_digest(run.checkpoint)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        settings = job_settings(
            run, digest, protocol.name, threshold, options.keep_phi, engine, options.fallback_spacing,
            options.overlays, options.dicom,
        )  # fmt: skip
        check_settings(out_dir, settings)
        finalize(out_dir, header)  # rows left in part files by a killed torchrun job
    ctx.barrier()
    done = done_paths(out_dir)
    todo = [p for p in paths if output_path(p) not in done]
    mine = ctx.shard(todo)
    summary = PredictSummary(inputs=len(paths), skipped=len(paths) - len(todo))
    spacing_label = options.spacing_label
    dicom_writer = _dicom_writer(out_dir, landmarks, threshold, protocol, digest) if options.dicom else None
    run_name = Path(run.run_dir).name  # for the overlays' title
    dataset = InferenceSet(mine, protocol, engine.codec.input_size, options.fallback_spacing, options.keep_phi,
                           run.config.jpeg_scaling)  # fmt: skip
    device_is_cuda = str(getattr(engine, "device", "cpu")).startswith("cuda")
    # closed on the way out, also when a write fails: the readers must not outlive the loop
    batches = contextlib.closing(
        stream_batches(dataset, options.batch_size, options.workers, device_is_cuda, options.reader)
    )
    writer = OutputWriter(ctx.part_dir(out_dir), header)
    start = time.perf_counter()
    with batches as batches, _Progress(console, options.progress and ctx.is_main, len(mine)) as advance:

        def write_batch(records: list[dict], xy_input, peaks) -> None:
            """One batch's rows (and DICOM outputs, overlays), then its fsync (on the write-behind thread but for
            the first batch)."""
            j = 0
            for record in records:
                if not record["ok"]:
                    writer.write_error(output_path(record["path"]), record["error_type"], record["error_message"])
                    summary.failed += 1
                    summary.failed_paths.append(record["path"])
                    continue
                if record["spacing_source"] == "dataset.yaml":  # prepare_image's name for the fallback
                    record["spacing_source"] = spacing_label
                xy = to_image_coords(xy_input[j], record["scale"][None, :])
                values, json_record = format_result(record, xy, peaks[j], threshold, landmarks, options.keep_phi)
                if json_record["spacing_mm"] is None:
                    summary.no_spacing += 1
                    if summary.no_spacing == 1 and console is not None:
                        notice = _no_spacing_notice(output_path(record["path"]), run)
                        console.print(notice, markup=False, highlight=False)
                if dicom_writer is not None:  # before the results row: the row is the commit
                    json_record["dicom_outputs"] = _dicom(dicom_writer, record, xy, peaks[j], options, summary, console)
                writer.write_result(values, json_record)
                if options.overlays:
                    _overlay(write_overlay, record, xy, peaks[j], threshold, landmarks, protocol, options, out_dir,
                             run_name, console)  # fmt: skip
                j += 1
            writer.sync()
            summary.processed += len(records)
            advance(len(records))

        with WriteBehind(write_batch) if options.write_behind else contextlib.nullcontext() as behind:
            for i, batch in enumerate(batches):
                xy_input = peaks = None
                if batch["images"] is not None:
                    xy_input, peaks = engine(*_full_batch(batch["images"], batch["valid"], options.batch_size))
                # the first batch is written here: after it the reader may hand over to processes (``auto``), and
                # the fork must not copy a thread that is writing (holding a lock of cv2, pydicom or the console);
                # its time over that batch is also what ``auto`` weighs against the reading
                if behind is None or i == 0:
                    write_batch(batch["records"], xy_input, peaks)
                else:
                    behind.submit(batch["records"], xy_input, peaks)
    summary.seconds = time.perf_counter() - start
    writer.close()
    ctx.barrier()
    if ctx.is_main:
        finalize(out_dir, header)
        wanted = {output_path(p) for p in paths}
        summary.failed_total = sum(r[0] in wanted for r in read_csv_rows(out_dir / ERRORS_CSV)[1])
        summary.results_total = len(read_csv_rows(out_dir / "results.csv")[1])
    counts = ("processed", "failed", "no_spacing", "dicom_images", "dicom_skipped", "dicom_not_dicom")
    for name, value in zip(counts, ctx.reduce([getattr(summary, c) for c in counts]), strict=True):
        setattr(summary, name, int(value))
    summary.seconds, summary.failed_total, summary.results_total = ctx.reduce(
        [summary.seconds, summary.failed_total, summary.results_total], op="max"
    )
    summary.failed_total, summary.results_total = int(summary.failed_total), int(summary.results_total)
    return summary


def _full_batch(images, valid, size: int):
    """``images`` [n, ...] and ``valid`` [n, 2] filled up to ``size`` rows with blank images (full size valid)."""
    import torch

    missing = size - images.shape[0]
    if missing <= 0:
        return images, valid
    blank_valid = torch.tensor(images.shape[-2:], dtype=valid.dtype).expand(missing, 2)
    return torch.cat([images, images.new_zeros((missing, *images.shape[1:]))]), torch.cat([valid, blank_valid])


def _dicom_writer(out_dir: Path, landmarks: list[str], threshold: float, protocol, model_id: str):
    from landmark_afl.inference.dicom_outputs import DicomOutputWriter

    return DicomOutputWriter(out_dir, landmarks, threshold, getattr(protocol, "name", ""), model_id=model_id)


def _dicom(dicom_writer, record, xy, peaks, options, summary: PredictSummary, console) -> dict:
    """The GSPS and SR of one image (``--dicom``); what was written and what was skipped, for results.jsonl."""
    from landmark_afl.inference.dicom_outputs import NOT_DICOM

    root = options.overlay_root or Path(record["path"]).parent
    outputs = dicom_writer.write(record["path"], root, xy, peaks)
    if outputs["gsps"] or outputs["sr"]:
        summary.dicom_images += 1
    if outputs["skipped"] == NOT_DICOM:
        summary.dicom_not_dicom += 1
    elif outputs["skipped"]:
        summary.dicom_skipped += 1
        if console is not None:
            from rich.markup import escape

            console.print(f"[yellow]warning:[/yellow] {escape(outputs['skipped'])}", highlight=False)
    return outputs


def _no_spacing_notice(path: str, run) -> str:
    """The one-time notice of a job whose results lack mm: which option gives them."""
    fallback = (getattr(run, "state", None) or {}).get("spacing_fallback")
    hint = (
        f"add --spacing run to use the run's data set spacing ({' x '.join(f'{v:g}' for v in fallback)} mm), or "
        "--spacing MM [MM] for the true pixel size of these images"
        if fallback
        else "add --spacing MM [MM] (row col) with the true pixel size of these images"
    )
    return (
        f"note: {path} carries no pixel spacing (as JPEG / PNG files never do): its mm columns are empty, and so "
        f"are those of every such image of this job; {hint} (in a new --out folder)"
    )


def _overlay(
    write_overlay, record, xy, peaks, threshold, landmarks, protocol, options, out_dir, run_name, console
) -> None:
    from landmark_afl.inference.inputs import overlay_name

    root = options.overlay_root or Path(record["path"]).parent
    target = out_dir / "overlays" / overlay_name(Path(record["path"]), root)
    try:
        write_overlay(record["path"], protocol, xy, peaks, peaks >= threshold, landmarks, target, run_name=run_name,
                      threshold=threshold)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - an overlay is a picture; its failure must not lose the result
        if console is not None:
            console.print(f"[yellow]warning:[/yellow] overlay of {record['path']} not written: {err}")


class _Progress:
    """A rich progress bar with images/s and ETA, or nothing (returns a no-op ``advance``)."""

    def __init__(self, console, enabled: bool, total: int) -> None:
        self.console, self.enabled, self.total = console, enabled, total
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("predict"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task("predict", total=self.total, rate="- img/s")

        def advance(n: int) -> None:
            self.bar.advance(task, n)
            speed = self.bar.tasks[0].speed
            self.bar.update(task, rate=f"{speed:.1f} img/s" if speed else "- img/s")

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
