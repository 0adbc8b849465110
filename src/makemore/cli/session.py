"""How `train` drives a run from the command line: torchrun jobs, Ctrl-C, the run lock, progress, the last lines."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

from torch.distributed import DistError

from ..data.atomic import remove_stale_temporaries
from ..errors import MakemoreError
from ..studies.plots import loss_curve_chart
from ..training.lock import run_lock
from ..training.loop import TrainingInterrupted
from ..training.run_folder import METRICS, read_metrics
from ..training.torchrun import from_environ, start, stop
from .common import log, progress_callback, refuse_existing_run

RUN_FILES = ("run.json", "model.safetensors", "train_state.safetensors", "best.safetensors", "metrics.csv", "loss.png")


@contextmanager
def parallel_job(device, out_dir: Path):
    """Under torchrun (its environment says so), join the job's process group for the command; else one process."""
    launch = from_environ(os.environ)
    if launch is None:
        yield None, device
        return
    parallel, device = start(launch, device)
    try:
        yield parallel, device
    except RuntimeError as e:  # a rank died or cannot be reached: stop with a word, not a hang or a traceback
        if not peer_lost(e):
            raise
        raise MakemoreError(f"another process of this torchrun job stopped or cannot be reached, so this one stops "
                            f"too ({str(e).splitlines()[0][:160]}); the last resume point is kept: "
                            f"makemore train --resume {out_dir}") from None
    finally:
        stop()


def peer_lost(error: RuntimeError) -> bool:
    """A collective failed because another rank is gone (gloo or NCCL said so, or the engine's timeout struck)."""
    text = str(error)
    return isinstance(error, DistError) or any(s in text for s in ("gloo", "NCCL", "Connection reset", "Connection closed",
                                                                  "timed out", "Timed out"))


@contextmanager
def training_session(out_dir: Path, label: str, tensorboard: bool, main: bool, overwrite: bool = True):
    """Ctrl-C/SIGTERM handling on every rank; on the writing process also the run lock, a second look at the
    folder now that no one else can write there, the leftovers of a killed writer, and the progress bar."""
    with graceful_stop(announce=main) as should_stop:
        if not main:
            yield should_stop, None
            return
        with run_lock(out_dir), progress_reporter(label, out_dir, tensorboard) as on_progress:
            refuse_existing_run(out_dir, overwrite)
            remove_stale_temporaries(out_dir, RUN_FILES)
            yield should_stop, on_progress


def say(parallel, message: str) -> None:
    """A message on stderr, from rank 0 only in a job."""
    if parallel is None or parallel.is_main:
        log(message)


def where(device, parallel) -> str:
    return str(device) if parallel is None else f"{device} x {parallel.world_size} processes ({parallel.backend})"


def run_or_explain(train_fn, out_dir: Path, main: bool = True):
    try:
        return train_fn()
    except TrainingInterrupted as stop:
        if not main:  # rank 0 says it; the others leave quietly
            raise SystemExit(1) from None
        raise MakemoreError(f"stopped at step {stop.step:,}; the checkpoint is saved. Resume with: "
                            f"makemore train --resume {out_dir}") from None
    except MakemoreError as e:  # the library says "resume the run"; the command line says how
        if "resume the run" in str(e):
            raise MakemoreError(f"{e} (makemore train --resume {out_dir})") from None
        raise


def finish_training(args, out_dir: Path, meta: dict) -> None:
    if not args.no_plot and meta["model"] != "ensemble":
        plot_loss(out_dir, meta["model"])
    m = meta["metrics"]
    step, used = meta.get("step"), meta.get("weights_step", meta.get("step"))
    best = f"; its weights are step {used:,}'s, the best val check" if used != step else ""
    early = " (stopped early)" if meta.get("stopped_early") else ""
    log(f"saved {out_dir} ({meta['params']:,} parameters, {meta['train_seconds']:.1f} s{best}){early}")
    print(f"train {m['train_nll']:.4f}  val {m['val_nll']:.4f}  test {m['test_nll']:.4f}")


def plot_loss(out_dir: Path, title: str) -> None:
    if not (out_dir / METRICS).exists():
        return
    try:
        loss_curve_chart(read_metrics(out_dir), out_dir / "loss.png", title)
    except MakemoreError as e:
        log(f"note: loss.png not written ({e})")


@contextmanager
def graceful_stop(announce: bool = True):
    """SIGINT/SIGTERM ask training to stop after the current step and save; a second Ctrl-C aborts at once.

    In a torchrun job every rank gets the signal and they stop at the same step; rank 0 alone says so."""
    requested = {"stop": False}
    previous = {}

    def handler(signum, frame):
        if requested["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested["stop"] = True
        if announce:
            log("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort without saving)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. called from a library user's thread): no handlers
            pass
    try:
        yield lambda: requested["stop"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def progress_reporter(label: str, out_dir: Path, tensorboard: bool):
    """The progress bar (terminal only) and, if asked for, TensorBoard scalars in RUN_DIR/tensorboard."""
    bar = progress_callback(label)
    writer = None
    if tensorboard:
        try:  # an optional extra (makemore[tensorboard]): imported only when asked for
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MakemoreError("--tensorboard needs the tensorboard package: pip install 'makemore[tensorboard]'") from None
        writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def report(p) -> None:
        if bar is not None:
            bar(p)
        if writer is not None:
            writer.add_scalar("loss/train", p.loss, p.step)
            writer.add_scalar("lr", p.lr, p.step)
            if p.val_loss is not None:
                writer.add_scalar("loss/val", p.val_loss, p.step)

    try:
        yield report
    finally:
        if writer is not None:
            writer.close()
