"""What both trainers share: the schedule's range checks, the trainer arguments that keep library
code silent and seeded, and the callback that reports progress through the caller's callback."""

from __future__ import annotations

import time
from typing import Any

from retrieval_cli import models
from retrieval_cli.errors import InputError, on_sigterm
from retrieval_cli.progress import Progress


def check_schedule(learning_rate: float, warmup_ratio: float) -> None:
    """The range checks both trainers' configs share."""
    if not 0 < learning_rate < 1:
        raise InputError(f"learning rate must be in (0, 1), got {learning_rate}", field="learning_rate")
    if not 0 <= warmup_ratio < 1:
        raise InputError(f"warmup ratio must be in [0, 1), got {warmup_ratio}", field="warmup_ratio")


def schedule(epochs: int, batch_size: int, learning_rate: float, warmup_ratio: float, seed: int) -> dict[str, Any]:
    """Trainer arguments both trainers share: the schedule, seeds, and no printing or reporting."""
    return {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_ratio,  # transformers 5: a float below 1 is a ratio
        "seed": seed,
        "data_seed": seed,
        "report_to": "none",
        "disable_tqdm": True,  # library code never prints; progress goes through the callback
    }


def training_device(requested: str) -> str:
    """The device a trainer runs on (``models.resolve_device``). transformers' Trainer places a
    single process on the first visible GPU, so one GPU of several is chosen by the environment."""
    device = models.resolve_device(requested)
    if device.startswith("cuda:") and device != "cuda:0":
        raise InputError(
            f"training runs on the first visible GPU: choose it with CUDA_VISIBLE_DEVICES={device.partition(':')[2]} "
            "and --device cuda", field="device",
        )
    return "cuda" if device.startswith("cuda") else device


def device_arguments(device: str) -> dict[str, Any]:
    """Trainer arguments that keep training on ``device``: a CPU run stays there when a GPU exists."""
    return {"use_cpu": device == "cpu", "dataloader_pin_memory": device == "cuda"}


def progress_callback(progress: Progress, stage: str = "train cross-encoder") -> Any:
    """A trainer callback reporting steps, the latest logged loss and steps/s through ``progress``."""
    from transformers import TrainerCallback

    from retrieval_cli.progress import accepting_detail

    report = accepting_detail(progress)

    class _Report(TrainerCallback):
        def __init__(self) -> None:
            self.loss: float | None = None
            self.start: tuple[float, int] | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "loss" in logs:  # logged after on_step_end: redraw the step with its own loss
                self.loss = float(logs["loss"])
                self.on_step_end(args, state, control)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            now = time.perf_counter()
            if self.start is None:  # first step of this process (a resumed run starts past 0)
                self.start = (now, state.global_step - 1)
            elapsed = now - self.start[0]
            rate = (state.global_step - self.start[1] - 1) / elapsed if elapsed > 0 else 0.0
            parts = [f"loss {self.loss:.4f}"] if self.loss is not None else []
            if rate:
                parts.append(f"{rate:.2f} steps/s")
            report(stage, state.global_step, state.max_steps, detail=" · ".join(parts))

    return _Report()


CHECKPOINT_STEPS = 500  # a resumable checkpoint every this many steps
CHECKPOINT_MINUTES = 10.0  # and this often by the clock: an interruption loses minutes, not the run


def checkpoint_clock(minutes: float) -> Any:
    """A trainer callback that saves a resumable checkpoint every ``minutes`` of training (0:
    never), beside the every-N-steps saves: a CPU run of 32 steps never reached 500 and lost 13
    minutes to a kill. ``stop()`` (SIGTERM, ``stop_on_sigterm``) saves at the end of the current
    step and ends training there; ``stopped`` then says so."""
    from transformers import TrainerCallback

    class _Clock(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.monotonic()
            self.stopped = False

        def stop(self) -> None:
            self.stopped = True

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if self.stopped or (minutes > 0 and time.monotonic() - self.last >= minutes * 60):
                control.should_save = True  # the trainer saves after this, whatever its save strategy
            if self.stopped:
                control.should_training_stop = True
            return control

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.last = time.monotonic()

    return _Clock()


def stop_on_sigterm(clock: Any) -> Any:
    """While training, SIGTERM (a scheduler's preemption, ``kill``) asks ``clock`` to checkpoint
    at the end of the step and stop, instead of ending the process mid-step."""
    return on_sigterm(clock.stop)
