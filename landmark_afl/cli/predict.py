"""``landmark-afl predict`` (batch inference over a folder / file / list) and ``landmark-afl export`` (ONNX)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from landmark_afl.cli import HelpFormatter, UsageError

EXIT_OK, EXIT_USAGE, EXIT_SOME_FAILED = 0, 2, 3

PREDICT_EPILOG = """\
outputs (in --out, one row per image, sorted by path):
  results.csv     path, size, spacing (mm) and its source, threshold, n_present, the DICOM Study / Series / SOP
                  Instance UIDs, then for each landmark NAME_x, NAME_y (original pixels), NAME_x_mm, NAME_y_mm
                  (empty without spacing), NAME_peak, NAME_present (peak >= threshold)
  results.jsonl   the same, one JSON object per image
  errors.csv      path, error_type, message for every file that could not be read
  overlays/       with --overlays: PNGs with the landmarks drawn and labelled
  dicom/          with --dicom, per DICOM input: NAME.gsps.dcm (a presentation state: the detected landmarks as
                  points and labels over the original image) and NAME.sr.dcm (a TID 1500 measurement report),
                  new series of the source's study; results.jsonl's "dicom_outputs" says what was written or why not
Patient name, ID and birth date are never written to the tables unless --keep-phi is given. The DICOM outputs
carry the patient and study identity of their source image (a PACS files them with it): treat dicom/ as PHI.
Images without pixel spacing (JPEG, PNG...) get empty mm columns; --spacing MM or --spacing run gives them mm.
Resume: run again with the same --out; images already in results.csv or errors.csv are skipped.
Several processes: torchrun --standalone --nproc_per_node N -m landmark_afl predict RUN INPUT --out DIR

exit codes:
  0  every input image has results
  2  usage error (bad argument, unknown protocol, missing run, --out holds another job)
  3  some images failed (listed in errors.csv); the others have results
  1  any other error
Under torchrun every rank exits with the code above; torchrun itself then exits 1 for 2 and 3 (its own rule), so
read rank 0's summary line or errors.csv.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="detect landmarks in every image of a folder, file or list (CSV + JSONL, resumable)",
        description="Batch inference with a trained run. INPUT is a folder (searched recursively; DICOM recognised "
        "by content, DICOMDIR skipped), one image file, or a text file (.txt/.lst) listing image paths.",
        epilog=PREDICT_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run folder made by `landmark-afl train` (or a checkpoint .pt file)")
    p.add_argument("input", metavar="INPUT", help="folder, image file, or text file of paths (one per line)")
    p.add_argument("--out", required=True, help="output folder (created; reused to resume)")
    p.add_argument("--protocol", help="contrast protocol name or .yaml path (default: the one the run trained with)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--workers", type=int, default=2,
                   help="read ahead of the network (0 = read in the main process; otherwise at most this many "
                   "reader processes, see --reader; default 2)")  # fmt: skip
    p.add_argument("--reader", choices=("auto", "thread", "process"), default="auto",
                   help="who reads ahead: thread = one thread of this process (low priority on Linux; the least "
                   "overhead while the network runs on the CPU), process = --workers processes (for reads heavier "
                   "than the network); auto = processes on CUDA, else the thread unless its first batch took longer "
                   "to read than predict took over it (forward, decoding, writing) (default auto)")  # fmt: skip
    p.add_argument("--overlays", action="store_true", help="also write OUT/overlays/*.png with the landmarks drawn")
    p.add_argument(
        "--dicom",
        action="store_true",
        help="also write OUT/dicom/*.gsps.dcm and *.sr.dcm (presentation state, SR) per DICOM input",
    )
    p.add_argument("--threshold", type=float, help="peak response for 'present' (default: the run's detect_threshold)")
    p.add_argument("--engine", choices=("torch", "onnx"), default="torch", help="inference engine (default torch)")
    p.add_argument("--onnx", help="ONNX file for --engine onnx (default: export the run to OUT/model-<which>.onnx)")
    p.add_argument("--keep-phi", action="store_true", help="write DICOM patient name, ID and birth date (off)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of RUN to use")
    p.add_argument("--spacing", nargs="+", metavar="MM",
                   help="pixel spacing for images that carry none (JPEG, PNG...): mm (one value, or row col), or "
                   "'run' for the spacing of the run's training data set (its dataset.yaml spacing_mm)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1... (default auto)")
    p.add_argument("--amp", choices=("auto", "off", "bf16"), default="auto",
                   help="torch engine precision: auto = bf16 where the GPU or CPU has it (AVX-512 BF16, AMX), else "
                   "fp32; off = fp32; the onnx engine is fp32 (default auto)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
    p.set_defaults(func=run_predict_command)

    e = sub.add_parser(
        "export",
        help="export a run's model to ONNX (dynamic batch) for `predict --engine onnx`",
        description="Write the run's network (with its output activation) as ONNX, checked against PyTorch.",
    )
    e.add_argument("run", metavar="RUN", help="run folder made by `landmark-afl train` (or a checkpoint .pt file)")
    e.add_argument("--onnx", required=True, help="the .onnx file to write")
    e.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of RUN to export")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.set_defaults(func=run_export_command)


def _check_args(args: argparse.Namespace) -> None:
    from landmark_afl.io.spacing import plausible_spacing

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    if args.threshold is not None and not (math.isfinite(args.threshold) and args.threshold >= 0):
        raise UsageError(f"--threshold must be a finite peak response >= 0 (confident ~1), got {args.threshold}")
    if args.spacing is not None and args.spacing != ["run"]:
        try:
            mm = [float(v) for v in args.spacing]
        except ValueError:
            mm = []
        if len(mm) not in (1, 2) or not plausible_spacing(mm):
            raise UsageError(
                "--spacing takes one or two pixel sizes in mm (row col) between 0.001 and 10, or 'run' (the run's "
                f"data set spacing), got {' '.join(args.spacing)}"
            )
        args.spacing = mm
    if args.onnx and args.engine != "onnx":
        raise UsageError("--onnx is only used with --engine onnx")


def _load_run(run: str, which: str, device: str):
    from landmark_afl.engine.checkpoint import CheckpointError
    from landmark_afl.recipes.landmarks import load_trained_run

    try:
        return load_trained_run(run, which=which, device=device)
    except (CheckpointError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err


def _onnx_engine(args, run, out_dir: Path, device, ctx):
    from landmark_afl.engine.checkpoint import checkpoint_digest
    from landmark_afl.inference.engines import OnnxEngine, read_onnx_metadata
    from landmark_afl.inference.export import export_onnx

    digest = checkpoint_digest(run.checkpoint)
    path = Path(args.onnx) if args.onnx else out_dir / f"model-{args.which}.onnx"
    if args.onnx is None and ctx.is_main:
        if not path.is_file() or read_onnx_metadata(path).get("checkpoint_sha256") != digest:
            export_onnx(run, path)
    ctx.barrier()
    if not path.is_file():
        raise UsageError(f"--onnx {path}: no such file; write it with `landmark-afl export {args.run} --onnx {path}`")
    try:
        meta = read_onnx_metadata(path)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if meta.get("checkpoint_sha256") != digest:
        raise UsageError(
            f"{path} was exported from {meta.get('checkpoint')}, not from {run.checkpoint} (checksums differ); "
            f"export it again: landmark-afl export {args.run} --which {args.which} --onnx {path}"
        )
    return OnnxEngine(path, device=device)


def _fallback_spacing(args: argparse.Namespace, run) -> tuple[tuple[float, float] | None, str]:
    """(row, col) mm for images without spacing and its ``spacing_source`` label: ``--spacing MM [MM]``, or
    ``--spacing run`` (the run's data set spacing, labelled "dataset.yaml"), or none."""
    if args.spacing is None:
        return None, "--spacing"
    if args.spacing == ["run"]:
        fallback = (run.state or {}).get("spacing_fallback")
        if not fallback:
            raise UsageError(
                f"--spacing run: the run {args.run} was trained on a data set without spacing_mm in its dataset.yaml; "
                "give the pixel size instead: --spacing MM (or row col)"
            )
        return (float(fallback[0]), float(fallback[-1])), "dataset.yaml"
    return (args.spacing[0], args.spacing[-1]), "--spacing"


def _dicom_line(summary) -> str:
    """The console line of a ``--dicom`` job: images with outputs, DICOM inputs skipped, non-DICOM inputs."""
    parts = [f"DICOM outputs for {summary.dicom_images} images"]
    if summary.dicom_skipped:
        parts.append(f"{summary.dicom_skipped} DICOM inputs skipped (warnings above; reasons in results.jsonl)")
    if summary.dicom_not_dicom:
        parts.append(f"{summary.dicom_not_dicom} inputs not DICOM (none for them)")
    return ", ".join(parts) + " in this job"


def run_predict_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from landmark_afl.inference.distributed import init_distributed
    from landmark_afl.inference.engines import TorchEngine
    from landmark_afl.inference.inputs import collect_inputs, common_root
    from landmark_afl.inference.predictor import PredictOptions, run_predict
    from landmark_afl.protocols import ProtocolError
    from landmark_afl.recipes.landmarks import resolve_device

    _check_args(args)
    if args.dicom:
        from landmark_afl.inference.dicom_outputs import require_highdicom

        try:
            require_highdicom()
        except ImportError as err:
            raise UsageError(str(err)) from err
    console = Console(stderr=True)
    ctx = init_distributed(args.device)
    try:
        try:
            device = resolve_device(args.device)
        except (ValueError, RuntimeError) as err:
            raise UsageError(str(err)) from err
        if ctx.backend == "nccl":
            import torch

            device = torch.device("cuda", ctx.local_rank)
        run = _load_run(args.run, args.which, device)
        try:
            protocol = run.protocol_for(args.protocol)
            paths = collect_inputs(args.input)
        except (ProtocolError, FileNotFoundError, ValueError) as err:
            raise UsageError(str(err)) from err
        if args.protocol and protocol.name != run.protocol and ctx.is_main:
            console.print(f"[yellow]note:[/yellow] the run was trained with protocol {run.protocol!r}, "
                          f"predicting with {protocol.name!r}")  # fmt: skip
        out_dir = Path(args.out)
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
        ctx.barrier()
        if args.engine == "onnx":
            try:
                engine = _onnx_engine(args, run, out_dir, device, ctx)
            except ImportError as err:  # onnx / onnxruntime not installed: the message says what to install
                raise UsageError(str(err)) from err
        else:
            engine = TorchEngine(run.task, device, amp=args.amp)
        spacing, spacing_label = _fallback_spacing(args, run)
        options = PredictOptions(
            batch_size=args.batch_size, workers=args.workers, reader=args.reader, threshold=args.threshold,
            overlays=args.overlays, overlay_root=common_root(paths), keep_phi=args.keep_phi, fallback_spacing=spacing,
            spacing_label=spacing_label, dicom=args.dicom, progress=not args.no_progress,
        )  # fmt: skip
        try:
            summary = run_predict(paths, out_dir, run, engine, protocol, options, ctx, console)
        except ValueError as err:  # OUT belongs to another job
            raise UsageError(str(err)) from err
    finally:
        ctx.close()
    if ctx.is_main:
        console.print(
            f"{summary.inputs} input images: {summary.skipped} already done, {summary.processed} processed "
            f"({summary.failed} failed) in {summary.seconds:.1f} s ({summary.images_per_second:.1f} img/s); "
            f"{summary.results_total} results, {summary.failed_total} errors in {out_dir}"
        )
        if args.dicom:
            console.print(_dicom_line(summary))
        if summary.no_spacing:
            console.print(f"{summary.no_spacing} results of this job have no mm (no pixel spacing; see the note above)")
        if summary.failed_total:
            console.print(f"[yellow]{summary.failed_total} images failed: see {out_dir / 'errors.csv'}[/yellow]")
    return EXIT_SOME_FAILED if summary.failed_total else EXIT_OK


def run_export_command(args: argparse.Namespace) -> int:
    from landmark_afl.inference.export import export_onnx

    run = _load_run(args.run, args.which, "cpu")
    try:
        path = export_onnx(run, args.onnx, opset=args.opset)
    except ImportError as err:
        raise UsageError(str(err)) from err
    print(f"wrote {path} ({len(run.landmarks)} landmarks, input {run.task.codec.input_size}, dynamic batch)")
    return EXIT_OK
