"""Soak test: one long run, watched from outside for growth of resident memory and of its TensorBoard event file.

    python bench/soak.py                       # PPO CartPole-v1, 1e6 env steps (a few minutes on 2 cores)
    python bench/soak.py --steps 200000 -- algo=dqn

At every tenth of the run (the plain progress lines `rltrain` prints when stdout is not a terminal) it records the
resident memory of the training process (VmRSS) and the size of the event file; at the end it counts the scalar
points in that file. It prints a markdown table and appends it to bench/results/soak.md: memory growth after
warm-up (the first tenth) and event-file bytes per logged point at each tenth, which stay flat when nothing leaks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

RESULTS = Path(__file__).resolve().parent / "results" / "soak.md"
PROGRESS = re.compile(r": step (\d+)/(\d+) ")


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def points_up_to(run_dir: Path) -> list[int]:
    """The step of every scalar point in the run's event files."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for tag in events.Tags()["scalars"] for e in events.Scalars(tag)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("overrides", nargs="*", help="more rltrain overrides (after --)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="rltrain-soak-")) / "run"
    rltrain = Path(sys.executable).parent / "rltrain"
    command = [str(rltrain), f"total_steps={args.steps}", f"hydra.run.dir={run_dir}", *args.overrides]
    start = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample_peak() -> None:  # the highest resident memory between two progress lines
        while process.poll() is None:
            try:
                peak[0] = max(peak[0], resident_kib(process.pid))
            except (FileNotFoundError, RuntimeError):
                return
            time.sleep(0.5)

    threading.Thread(target=sample_peak, daemon=True).start()
    rows = []  # (step, seconds, resident KiB now, peak KiB since the row before, event file bytes)
    for line in process.stdout:
        match = PROGRESS.search(line)
        if match and process.poll() is None:
            events = sorted(run_dir.glob("events.out.tfevents.*"))
            size = sum(p.stat().st_size for p in events)
            rows.append((int(match[1]), time.time() - start, resident_kib(process.pid), peak[0], size))
            peak[0] = 0
    if process.wait() != 0:
        sys.exit(f"the run failed with status {process.returncode}")
    steps = points_up_to(run_dir)
    final_size = sum(p.stat().st_size for p in run_dir.glob("events.out.tfevents.*"))
    warm = next(row for row in rows if row[0] >= args.steps // 10)  # after warm-up: the first tenth
    after_warm_up = rows[rows.index(warm) + 1 :]
    table = [
        f"\n## {datetime.now():%Y-%m-%d %H:%M} `rltrain {' '.join(command[1:2] + args.overrides)}`\n",
        "| env step | s | resident MiB | since the first tenth | peak in the tenth MiB | event file KiB | points "
        "| bytes/point |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for step, seconds, resident, top, size in rows:
        points = sum(1 for s in steps if s <= step)
        table.append(
            f"| {step} | {seconds:.0f} | {resident / 1024:.1f} | {100 * (resident - warm[2]) / warm[2]:+.1f}% "
            f"| {top / 1024:.1f} | {size / 1024:.0f} | {points} | {size / max(points, 1):.1f} |"
        )
    growth = 100 * (max(max(r[2], r[3]) for r in after_warm_up) - warm[2]) / warm[2]
    table.append(
        f"\nPeak resident memory after the first tenth: {growth:+.1f}% over the first tenth's; final event file "
        f"{final_size / 1024:.0f} KiB for {len(steps)} points ({final_size / len(steps):.1f} bytes/point)."
    )
    text = "\n".join(table) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
