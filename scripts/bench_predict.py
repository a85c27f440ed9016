# Run: python scripts/bench_predict.py --size 256 --images 48 --batch-size 8 --workers 1 --threads 1 --out b.json
#      OMP_NUM_THREADS=2 python scripts/bench_predict.py --images 192 --rss-counts "" --rounds 5   # the README's
#      OMP_NUM_THREADS=2 python scripts/bench_predict.py --images 192 --rss-counts "" --rounds 5 --cached-reads
#      OMP_NUM_THREADS=2 python scripts/bench_predict.py --images 192 --rss-counts "" --rounds 5 --cached-reads \
#          --readers auto,process                                    # the reader thread against a reader process
#      python scripts/bench_predict.py --inputs ../shared/data/isbi2015/RawImage/Test1Data --images 64 \
#          --engines torch --jpeg-scaling both --rss-counts "" --out b_isbi.json      # real cephalograms (JPEG)
"""End-to-end ``predict`` throughput against the pure forward rate, per engine; peak RSS for 100 / 2000 images.

Setting (state it with the figures): a randomly initialised FPN (the run's encoder, resnet18 by default; weights do
not change the cost) at ``--size`` px input; synthetic 16-bit PNG radiograph-like images already at that size, so the
letterbox resize is trivial and compute dominates; the run's protocol ("high"). Forward rate = ``engine.heatmaps`` on
a ready [B, 1, S, S] tensor (median of repeats); end-to-end = images / seconds of the predict loop (the reader
reading + preprocessing, forward, decode, CSV/JSONL rows and fsync), over the same batch size, with
OMP_WAIT_POLICY=PASSIVE as ``landmark-afl predict`` sets it (unless already set) and freed memory kept as it keeps it
(``engine.memory``; ``LANDMARK_AFL_MALLOC=default`` measures glibc's own policy). Peak RSS: the predict
command in a subprocess over 100 and 2000 images (64 px files, 64 px input), main process and largest child process.
The input files are generated once into a temporary folder. ``--inputs FOLDER`` predicts over the first ``--images``
real files of a folder instead (e.g. the ISBI 2015 cephalograms, 1935 x 2400 JPEG), and ``--jpeg-scaling both``
runs each engine twice, reading JPEG by DCT scaling (the default of new runs) and in full (runs trained before it).
``--cached-reads`` adds an arm per engine whose reads are served from memory (the loop without the reader's CPU
work: what reading costs the network). ``--readers auto,process`` measures every arm, and the peak RSS, with each
``predict --reader``. With the reader thread every round also says where the cores' time went
(``cpu_per_image``): the process's CPU time per image over the loop, the reader thread's share of it, the network's
alone (``--paired``), and the share of the cores left idle. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads, as `landmark-afl predict`

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from landmark_afl.engine.checkpoint import save_checkpoint  # noqa: E402
from landmark_afl.engine.config import config_to_dict, update_config  # noqa: E402
from landmark_afl.engine.memory import retain_freed_memory  # noqa: E402
from landmark_afl.recipes.landmarks import LandmarkConfig, build_task, load_trained_run  # noqa: E402

LANDMARKS = [f"l{i:02d}" for i in range(19)]


def make_run(run_dir: Path, size: int, encoder: str) -> Path:
    """A run folder with a randomly initialised model (the layout `landmark-afl train` writes)."""
    cfg = update_config(LandmarkConfig(), {"input_size": (size, size), "encoder": encoder, "seed": 0})
    torch.manual_seed(0)
    task = build_task(cfg, len(LANDMARKS))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    state = {
        "task": task.state_dict(), "task_extra": task.extra_state(), "epoch": 1, "step": 1, "metrics": {},
        "config": config_to_dict(cfg), "landmarks": LANDMARKS, "dataset_name": "bench", "data_dir": "",
        "protocol": cfg.protocol, "codec": task.codec.config(), "loss_activation": task.loss.activation,
        "spacing_fallback": None,
    }  # fmt: skip
    for name in ("best", "last"):
        save_checkpoint(run_dir / "checkpoints" / f"{name}.pt", state)
    return run_dir


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` smooth 16-bit PNGs of size x size (written once; reused when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((size, size), dtype=np.float32), (0, 0), size / 16)
    for i in range(n):
        path = folder / f"img_{i:05d}.png"
        if not path.exists():
            noise = rng.normal(0, 0.02, (size, size)).astype(np.float32)
            img = np.clip((base - base.min()) / (np.ptp(base) + 1e-6) + noise, 0, 1)
            cv2.imwrite(str(path), (img * 65535).astype(np.uint16))
    return folder


def forward_rate(engine, batch: int, size: int, repeats: int) -> float:
    images = torch.rand(batch, 1, size, size)
    for _ in range(3):  # warm-up: one pass left the first estimate of a fresh engine ~40 % low (19 against 31 img/s)
        engine.heatmaps(images)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        engine.heatmaps(images)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def with_jpeg_scaling(run, on: bool):
    """The run as if trained with ``jpeg_scaling=on`` (the same weights)."""
    from dataclasses import replace

    other = copy.copy(run)
    other.config = replace(run.config, jpeg_scaling=on)
    return other


def end_to_end(
    run, engine, paths, out: Path, batch: int, workers: int, reader: str = "auto", write_behind: bool = True
) -> dict:
    from landmark_afl.inference import stream
    from landmark_afl.inference.predictor import PredictOptions, run_predict
    from landmark_afl.protocols import load_protocol

    protocol = load_protocol(run.protocol)
    options = PredictOptions(
        batch_size=batch, workers=workers, reader=reader, progress=False, write_behind=write_behind
    )
    threads, init = [], stream._ReaderThread.__init__

    def recording(self, *args, **kwargs):  # the reader thread's own accounting of the consumer's waits and reads
        init(self, *args, **kwargs)
        threads.append(self)

    span, streaming = {}, stream.stream_batches

    def spanned(*args, **kwargs):  # the process's CPU and wall time from the first batch asked for to the stream's end
        span["cpu"], span["wall"] = time.process_time(), time.perf_counter()
        try:
            yield from streaming(*args, **kwargs)
        finally:
            span["cpu"], span["wall"] = time.process_time() - span["cpu"], time.perf_counter() - span["wall"]

    stream._ReaderThread.__init__, stream.stream_batches = recording, spanned
    try:
        t = time.perf_counter()
        summary = run_predict(paths, out, run, engine, protocol, options)
        wall = time.perf_counter() - t
    finally:
        stream._ReaderThread.__init__, stream.stream_batches = init, streaming
    assert summary.failed == 0 and summary.processed == len(paths), summary
    result = {
        "images": len(paths), "loop_s": summary.seconds, "wall_s": wall, "images_per_s": summary.images_per_second
    }  # fmt: skip
    if threads:  # None with reader processes from the start
        result.update(
            consumer_wait_s=sum(x.wait_seconds for x in threads),
            consumer_reads=sum(x.consumer_reads for x in threads),
            consumer_read_s=sum(x.consumer_read_seconds for x in threads),
            reader_cpu_s=sum(x.cpu_seconds for x in threads),
        )
    result.update(stream_cpu_s=span["cpu"], stream_wall_s=span["wall"])
    return result


def peak_rss(
    run_dir: Path, folder: Path, out: Path, batch: int, workers: int, threads: int, reader: str = "auto"
) -> dict:
    code = (
        "import json, resource, sys\n"
        "from landmark_afl.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "ru = resource.getrusage\n"
        "print(json.dumps({'rc': rc, 'main_mb': ru(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'worker_mb': ru(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
    )
    argv = ["predict", str(run_dir), str(folder), "--out", str(out), "--batch-size", str(batch),
            "--workers", str(workers), "--reader", reader, "--no-progress"]  # fmt: skip
    t = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, env=env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t
    return result


@contextlib.contextmanager
def reads_from_memory(run, paths, processes: bool = True):
    """``predict``'s reads served from memory: every item is read once before, so that the loop runs without the
    reading work (the reader's, and the main process's for the first batch); the reader (thread or processes), the
    batches' transfer and everything else in the loop stay as they are.

    Reader processes (``processes``) inherit the patched class by fork, so they need the fork start method (Linux's
    default before Python 3.14); the items must be asked for with the settings ``predict``'s defaults give (checked).
    """
    import multiprocessing

    from landmark_afl.inference import stream
    from landmark_afl.protocols import load_protocol

    if processes and multiprocessing.get_start_method() != "fork":
        raise RuntimeError(
            f"reads from memory need forked reader processes, not {multiprocessing.get_start_method()!r}: "
            'call multiprocessing.set_start_method("fork") first (Linux), leave out --cached-reads, or measure '
            "--readers thread"
        )
    ds = stream.InferenceSet(paths, load_protocol(run.protocol), run.task.codec.input_size,
                             jpeg_scaling=run.config.jpeg_scaling)  # fmt: skip
    settings = (ds.input_size, ds.jpeg_scaling, ds.fallback_spacing, ds.keep_phi)
    cache = {path: ds[i] for i, path in enumerate(ds.paths)}
    original = stream.InferenceSet.__getitem__

    def cached(self, index: int) -> dict:
        asked = (self.input_size, self.jpeg_scaling, self.fallback_spacing, self.keep_phi)
        if asked != settings:
            raise ValueError(f"the cached reads were made with {settings}, not {asked}")
        item = dict(cache[self.paths[index]], index=index)
        if "image" in item:
            item["image"] = item["image"].clone()  # a fresh tensor per read, as the reader gives
        return item

    stream.InferenceSet.__getitem__ = cached
    try:
        yield
    finally:
        stream.InferenceSet.__getitem__ = original


class TimedEngine:
    """An engine wrapper that adds up the time of the forward pass and of the decoding inside the predict loop.

    With ``paired`` every batch is run a second time right after its decoding, timed apart (``alone_s``) and
    discarded: the forward rate alone on the very batches of the loop, measured within a second of each of them.
    The readers are then waiting (they refill a queue of several batches in a few per cent of a forward pass, and
    the rows are written after the call), so the second pass runs alone, and the loop without it is
    ``loop_s - alone_s``: ``alone_s / (loop_s - alone_s)`` is the ratio with the machine's drift paired batch by
    batch instead of estimated from passes seconds before and after the loop. (With ``predict --reader auto`` the
    thread's hand-over to processes then weighs the first batch's read against twice its forward pass.)
    """

    def __init__(self, engine, paired: bool = False) -> None:
        self.engine = engine
        self.paired = paired
        self.alone_s = self.alone_cpu_s = 0.0  # the paired passes' wall time and the process's CPU time in them
        self.codec = engine.codec
        self.name = engine.name
        self.precision = engine.precision
        self.device = getattr(engine, "device", "cpu")
        self.forward_s = self.decode_s = 0.0
        self.reader_processes = 0  # the most reader processes alive at a forward pass (auto: 0 = the thread read)

    def __call__(self, images, valid=None):
        import multiprocessing

        self.reader_processes = max(self.reader_processes, len(multiprocessing.active_children()))
        t0 = time.perf_counter()
        maps = self.engine.heatmaps(images)
        t1 = time.perf_counter()
        xy, peaks = self.codec.decode(maps, valid)
        out = xy.cpu().numpy().astype(np.float64), peaks.cpu().numpy().astype(np.float64)
        t2 = time.perf_counter()
        self.forward_s += t1 - t0
        self.decode_s += t2 - t1
        if self.paired:
            cpu = time.process_time()
            self.engine.heatmaps(images)
            self.alone_s += time.perf_counter() - t2
            self.alone_cpu_s += time.process_time() - cpu
        return out


def cpu_use(e2e: dict, timed: TimedEngine, images: int) -> dict:
    """Where the cores' time went in the loop, the paired passes taken out: the CPU time per image of the whole
    process, of the reader thread and of the rest (the network, decoding, rows, and the consumer's own reads), the
    network's alone (``paired``), and the share of the cores left idle. Empty where reader processes read: their
    CPU time is not this process's."""
    if timed.reader_processes or "reader_cpu_s" not in e2e:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    span = e2e["stream_wall_s"] - timed.alone_s
    cpu = e2e["stream_cpu_s"] - timed.alone_cpu_s
    use = {
        "cores": cores, "loop_cpu_ms": 1e3 * cpu / images, "idle_share": 1 - cpu / (cores * span),
        "reader_cpu_ms": 1e3 * e2e["reader_cpu_s"] / images, "rest_cpu_ms": 1e3 * (cpu - e2e["reader_cpu_s"]) / images,
    }  # fmt: skip
    if timed.paired:
        alone_ms, alone_idle = 1e3 * timed.alone_cpu_s / images, 1 - timed.alone_cpu_s / (cores * timed.alone_s)
        reader, rest = use["reader_cpu_ms"] / alone_ms, use["rest_cpu_ms"] / alone_ms - 1
        idle = 1 - (1 - use["idle_share"]) / (1 - alone_idle)
        # the paired ratio in three factors, from the CPU times alone: the reader's CPU and the change of the rest's
        # against the network's alone, and the cores' busy time lost (the main thread's serial work leaves a core
        # idle); their product is the paired ratio but for the few ms between the loop's clock and the stream's
        use.update(network_alone_cpu_ms=alone_ms, network_alone_idle_share=alone_idle,
                   gap={"reader_cpu": reader, "rest_cpu": rest, "idle": idle},
                   ratio_from_cpu=(1 - idle) / (1 + reader + rest))  # fmt: skip
    return {"cpu_per_image": use}


def _cpu_text(use: dict | None) -> str:
    if not use:
        return ""
    alone = ""
    if "network_alone_cpu_ms" in use:
        idle = use["network_alone_idle_share"]
        gap = use["gap"]
        alone = (f", the network alone {use['network_alone_cpu_ms']:.1f} (cores idle {idle:.3f}); against it the "
                 f"reader +{gap['reader_cpu']:.3f}, the rest {gap['rest_cpu']:+.3f}, cores idle {gap['idle']:+.3f}: "
                 f"ratio {use['ratio_from_cpu']:.3f}")  # fmt: skip
    return (
        f"; CPU per image {use['loop_cpu_ms']:.1f} ms = reader thread {use['reader_cpu_ms']:.1f} + the rest "
        f"{use['rest_cpu_ms']:.1f}{alone}; cores idle in the loop {use['idle_share']:.3f}"
    )


def arm_label(engine: str, jpeg_scaling: bool, reads: str, reader: str = "auto", write_behind: bool = True) -> str:
    """ "torch", "torch, JPEG in full", "onnx, reads from memory", "torch, process reader", "torch, rows between
    passes" (``predict`` without its write-behind thread), ..."""
    return (
        engine
        + ("" if jpeg_scaling else ", JPEG in full")
        + (", reads from memory" if reads == "memory" else "")
        + ("" if reader == "auto" else f", {reader} reader")
        + ("" if write_behind else ", rows between passes")
    )


def bench_predict(
    size: int = 256,
    encoder: str = "resnet18",
    images: int = 64,
    batch_size: int = 8,
    workers: int = 1,
    threads: int = 0,
    repeats: int = 5,
    engines: tuple[str, ...] = ("torch", "onnx"),
    amp: str = "auto",
    rss_counts: tuple[int, ...] = (100, 2000),
    work_dir: str | Path | None = None,
    verbose: bool = True,
    inputs: str | Path | None = None,
    jpeg_scaling: tuple[bool, ...] = (True,),
    rounds: int = 1,
    cached_reads: bool = False,
    readers: tuple[str, ...] = ("auto",),
    paired: bool = False,
    write_behind: tuple[bool, ...] = (True,),
) -> dict:
    """Forward rate, end-to-end predict rate, their ratio and where the rest goes, per engine; peak RSS.

    With ``rounds`` > 1 every engine is measured that many times, the arms taking turns (in reverse order every
    other round); an arm's entry holds the median round's figures (the lower of the two middle ones for an even
    count), the median, min and max ratio and every round. ``cached_reads`` adds, per engine, an arm whose reads
    are served from memory (:func:`reads_from_memory`): the loop without the reading work, so its ratio is the
    bound ``predict``'s own machinery sets, and the gap to the arm reading the files is what reading costs.
    ``readers`` measures every arm with each of these readers (``predict --reader``). ``paired`` adds the ratio
    against every batch run again alone inside the loop (:class:`TimedEngine`; ``ratio_paired``, with its median,
    min and max over the rounds): the figure a noisy machine cannot move as much. ``write_behind`` (True, False
    or both) measures every arm with ``predict`` writing its rows and fsyncs on its write-behind thread and / or
    between the forward passes (``PredictOptions.write_behind``).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be 1 or more, got {rounds}")
    from landmark_afl.inference.engines import OnnxEngine, TorchEngine
    from landmark_afl.inference.export import export_onnx
    from landmark_afl.inference.inputs import collect_inputs

    malloc = retain_freed_memory()  # as `landmark-afl predict` does (LANDMARK_AFL_MALLOC=default: glibc's own)
    work = Path(work_dir or tempfile.mkdtemp(prefix="bench_predict_"))
    run_dir = make_run(work / f"run_{encoder}_{size}", size, encoder)
    run = load_trained_run(run_dir)
    if inputs is not None:
        paths = collect_inputs(inputs)[:images]
        images = len(paths)
    else:
        paths = collect_inputs(make_images(work / f"images_{size}", images, size))
    report = {
        "setting": {
            "encoder": encoder, "input_size": size, "image_size": size if inputs is None else f"files of {inputs}",
            "images": images, "jpeg_scaling": list(jpeg_scaling),
            "batch_size": batch_size, "workers": workers, "main_threads": torch.get_num_threads(),
            "protocol": run.protocol, "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "amp": amp, "rounds": rounds,
            "cached_reads": cached_reads, "readers": list(readers), "paired": paired, "malloc": malloc,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "write_behind": list(write_behind),
        },
        "engines": {},
    }  # fmt: skip
    built = {}
    for name in engines:
        if name == "torch":
            built[name] = TorchEngine(run.task, amp=amp)
        else:
            built[name] = OnnxEngine(export_onnx(run, work / "model.onnx"), threads=threads)
    reads = ("files", "memory") if cached_reads else ("files",)
    arms = [
        (n, s, src, rd, wb)
        for n in engines for s in jpeg_scaling for src in reads for rd in readers for wb in write_behind
    ]  # fmt: skip
    measured = {arm: [] for arm in arms}
    for r in range(rounds):  # the arms interleaved round by round: the machine's drift reaches all of them alike
        for name, scaling, source, reader, behind in arms if r % 2 == 0 else arms[::-1]:  # every other reversed
            engine = built[name]
            label = arm_label(name, scaling, source, reader, behind)
            arm_run = with_jpeg_scaling(run, scaling)
            serving = contextlib.nullcontext()
            if source == "memory":
                serving = reads_from_memory(arm_run, paths, processes=reader != "thread")
            with serving:
                before = forward_rate(engine, batch_size, size, repeats)
                timed = TimedEngine(engine, paired)
                out = work / f"out_{name}_{time.time_ns()}"
                e2e = end_to_end(arm_run, timed, paths, out, batch_size, workers, reader, behind)
                after = forward_rate(engine, batch_size, size, repeats)
            fwd = 0.5 * (before + after)  # the machine's drift hits both sides of the predict loop alike
            loop = e2e["loop_s"] - timed.alone_s  # the loop without the paired passes (0 s unless paired)
            e2e["images_per_s"] = len(paths) / loop
            other = loop - timed.forward_s - timed.decode_s
            # ratio = in_loop x share: how fast the network ran inside the loop against alone (what the readers and
            # the machine took from it), and the loop's time spent in it (the rest is predict's own work)
            in_loop, share = len(paths) / timed.forward_s / fwd, timed.forward_s / loop
            use = cpu_use(e2e, timed, len(paths))
            measured[(name, scaling, source, reader, behind)].append({
                "forward_images_per_s": fwd, "forward_before": before, "forward_after": after, **e2e,
                "ratio": e2e["images_per_s"] / fwd, "loop_forward_s": timed.forward_s,
                "loop_decode_s": timed.decode_s, "loop_other_s": other,
                "loop_forward_images_per_s": len(paths) / timed.forward_s,
                "network_in_loop": in_loop, "network_share": share, "reader_processes": timed.reader_processes,
                **({"loop_with_paired_s": e2e["loop_s"], "loop_s": loop, "alone_s": timed.alone_s,
                    "alone_images_per_s": len(paths) / timed.alone_s, "ratio_paired": timed.alone_s / loop}
                   if paired else {}),
                **use,
            })  # fmt: skip
            rate = e2e["images_per_s"]
            if verbose:
                print(f"round {r + 1}/{rounds}  {label:5s} ({engine.precision})  forward {fwd:7.1f} img/s   "
                      f"end-to-end {rate:7.1f} img/s   ratio {rate / fwd:.3f}   loop {loop:.1f} s = forward "
                      f"{timed.forward_s:.1f} + decode {timed.decode_s:.2f} + reading wait, hand-over"
                      f"{'' if behind else ', rows, fsync'} "
                      f"{other:.2f}; network in the loop at {in_loop:.3f} of its rate alone, {share:.3f} of the "
                      "loop" + (f"; paired: alone {len(paths) / timed.alone_s:.1f} img/s, ratio "
                                f"{timed.alone_s / loop:.3f}" if paired else "")
                      + (f"; the consumer waited {e2e['consumer_wait_s']:.2f} s for the reader thread and read "
                         f"{e2e['consumer_reads']} images itself in {e2e['consumer_read_s']:.2f} s"
                         if "consumer_wait_s" in e2e else "")
                      + _cpu_text(use.get("cpu_per_image")))  # fmt: skip
    for (name, scaling, source, reader, behind), runs in measured.items():
        label = arm_label(name, scaling, source, reader, behind)
        ratios = [m["ratio"] for m in runs]
        middle = sorted(runs, key=lambda m: m["ratio"])[(len(runs) - 1) // 2]  # the median round (lower middle)
        report["engines"][label] = {
            "precision": built[name].precision, "jpeg_scaling": scaling, "reads": source, "reader": reader,
            "write_behind": behind, **middle,
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "rounds": runs,
        }  # fmt: skip
        if paired:
            pairs = [m["ratio_paired"] for m in runs]
            report["engines"][label].update(
                ratio_paired_median=statistics.median(pairs), ratio_paired_min=min(pairs), ratio_paired_max=max(pairs)
            )
        if verbose and rounds > 1:
            print(f"{label:5s}  ratio median {statistics.median(ratios):.3f}  (rounds: "
                  f"{', '.join(f'{x:.3f}' for x in ratios)})" + (f"; paired median {statistics.median(pairs):.3f} "
                  f"(rounds: {', '.join(f'{x:.3f}' for x in pairs)})" if paired else ""))  # fmt: skip
    if rss_counts:
        small_run = make_run(work / f"run_{encoder}_64", 64, encoder)
        report["peak_rss"] = {}
        for n in rss_counts:
            folder = make_images(work / f"images_64_{n}", n, 64)
            for reader in readers:  # keys "100", "2000" for auto; "100, thread reader"... for the others
                out = work / f"out_rss_{n}_{time.time_ns()}"
                rss = peak_rss(small_run, folder, out, batch_size, workers, threads, reader)
                key = str(n) + ("" if reader == "auto" else f", {reader} reader")
                report["peak_rss"][key] = rss
                if verbose:
                    print(f"peak RSS, {key} images (64 px): main {rss['main_mb']:.0f} MB, largest worker "
                          f"{rss['worker_mb']:.0f} MB, {rss['wall_s']:.1f} s")  # fmt: skip
    return report


ON_OFF_BOTH = {"on": (True,), "off": (False,), "both": (True, False)}  # an on / off / both flag's arms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="input size (px) of the throughput model and images")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--images", type=int, default=64, help="images for the end-to-end throughput")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="main-process threads (0 = default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every engine this many times, interleaved; the JSON keeps each round and the median",
    )
    p.add_argument("--engines", default="torch,onnx")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16"), help="torch engine precision")
    p.add_argument("--rss-counts", default="100,2000", help="image counts for the peak-RSS runs ('' = skip)")
    p.add_argument("--work-dir", help="where the generated inputs live (default: a temporary folder)")
    p.add_argument("--inputs", help="a folder of real images to predict over (default: generated PNGs)")
    p.add_argument("--jpeg-scaling", default="on", choices=tuple(ON_OFF_BOTH),
                   help="read JPEG inputs by DCT scaling (on), in full (off), or each engine both ways")  # fmt: skip
    p.add_argument(
        "--cached-reads",
        action="store_true",
        help="add an arm per engine whose reads come from memory (the loop without the reader's work)",
    )
    p.add_argument(
        "--readers",
        default="auto",
        help="comma-separated `predict --reader` values to measure every arm with (auto, thread, process)",
    )
    p.add_argument(
        "--paired",
        action="store_true",
        help="also run every batch again alone inside the loop: the ratio against the forward rate of those passes",
    )
    p.add_argument(
        "--write-behind",
        default="on",
        choices=tuple(ON_OFF_BOTH),
        help="predict writes rows and fsyncs on its write-behind thread (on), between the passes (off), or both",
    )
    p.add_argument("--out", default="bench_predict.json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = bench_predict(
        args.size, args.encoder, args.images, args.batch_size, args.workers, args.threads, args.repeats,
        tuple(e for e in args.engines.split(",") if e), args.amp,
        tuple(int(c) for c in args.rss_counts.split(",") if c), args.work_dir, True, args.inputs,
        ON_OFF_BOTH[args.jpeg_scaling], args.rounds,
        args.cached_reads, tuple(r for r in args.readers.split(",") if r), args.paired,
        ON_OFF_BOTH[args.write_behind],
    )  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
