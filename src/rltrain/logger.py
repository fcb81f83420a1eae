"""TensorBoard scalars, a console progress bar and the machine-readable summary.json of a run."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import deque
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams
from tqdm import tqdm


def flatten(config: dict, prefix: str = "") -> dict[str, float | int | str | bool]:
    """Nested config -> {"algo.lr": 0.001, ...} with values the HParams plugin accepts."""
    flat: dict = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is not None:
            flat[name] = str(value)
    return flat


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def wait_for_a_later_second(run_dir: Path) -> None:
    """TensorBoard reads a run's event files in name order, and a name starts with the second the file was opened
    in: a resumed run's file must sort after those before it, even when it restarts within the same second."""
    names = (re.match(r"events\.out\.tfevents\.(\d+)\.", p.name) for p in Path(run_dir).glob("events.out.*"))
    opened = [int(name.group(1)) for name in names if name]
    delay = max(opened, default=0) + 1 - time.time()
    if delay > 0:
        time.sleep(delay)


class Logger:
    """Everything a run reports. Scalars are buffered as tensors and turned into floats only when written."""

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        start_step: int,
        progress: bool,
        description: str,
        unit: str = "env steps",
    ):
        self.run_dir = run_dir
        purge_step = None
        if any(Path(run_dir).glob("events.out.tfevents.*")):  # a run continued, or started again after a kill
            wait_for_a_later_second(run_dir)
            # hides anything a killed run logged after its last checkpoint (everything up to start_step was flushed
            # before that checkpoint was written; a run killed before its first one starts over), so no step is
            # logged twice
            purge_step = start_step + 1 if start_step > 0 else 0
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.total_steps = total_steps
        self.start_step = start_step
        self.start_time = time.perf_counter()
        self.interactive = progress and sys.stdout.isatty()
        self.plain = progress and not self.interactive
        self.next_plain_report = start_step
        # what the step axis counts (the loop's step_unit: env steps, updates, sweeps), singular, and its rate
        self.unit = "step" if unit == "env steps" else unit.removesuffix("s")
        self.rate_name = "sps" if unit == "env steps" else f"{unit}/s"
        self.bar = (
            tqdm(
                total=total_steps,
                initial=start_step,
                desc=description,
                unit=self.unit,
                dynamic_ncols=True,
                smoothing=0.05,
            )
            if self.interactive
            else None
        )
        self.description = description
        self.shown_step = start_step

    def sps(self, step: int) -> float:
        return (step - self.start_step) / max(time.perf_counter() - self.start_time, 1e-9)

    def episode(self, step: int, episodic_return: float, length: int) -> None:
        self.recent_returns.append(episodic_return)
        self.writer.add_scalar("charts/episodic_return", episodic_return, step)
        self.writer.add_scalar("charts/episodic_length", length, step)

    def scalars(self, step: int, metrics: dict, prefix: str) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def recent_return(self) -> float | None:
        return sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else None

    def progress(self, step: int) -> None:
        recent = self.recent_return()
        if self.bar is not None:
            self.bar.update(step - self.shown_step)
            self.shown_step = step
            postfix = {self.rate_name: f"{self.sps(step):.0f}"}
            if recent is not None:
                postfix["return"] = f"{recent:.1f}"
            self.bar.set_postfix(postfix, refresh=False)
        elif self.plain and (step >= self.next_plain_report or step >= self.total_steps):
            self.next_plain_report = step + max(1, self.total_steps // 10)
            sps = self.sps(step)
            eta = (self.total_steps - step) / max(sps, 1e-9)
            ret = f" return {recent:.1f}" if recent is not None else ""
            print(
                f"{self.description}: {self.unit} {step}/{self.total_steps} ({sps:.0f} {self.rate_name}{ret}, "
                f"eta {eta:.0f} s)",
                flush=True,
            )

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def config(self, config: dict) -> None:
        text = json.dumps(config, indent=2)
        self.writer.add_text("config", f"```\n{text}\n```", 0)

    def hparams(self, config: dict, metrics: dict[str, float]) -> None:
        """Hyperparameters and final metrics in the HParams plugin, inside this run (no timestamped sub-run)."""
        experiment, session_start, session_end = hparams(flatten(config), metrics)
        for summary in (experiment, session_start, session_end):
            self.writer.file_writer.add_summary(summary)
        step = metrics.get("hparams/env_steps", 0)
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, int(step))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.flush()
        self.writer.close()
