"""`make bench-devices`: the same fixed amount of training on `device=cpu` and `device=cuda`, to show where a GPU
pays off and where the small MLPs of classic control are faster on one CPU core (and what `device=auto` picks).

Each case is a tuned preset cut to a short fixed budget (env steps, or gradient updates for the offline ones), with
the evaluation reduced to 2 final episodes so that the time measured is training. Each (case, device) runs in its own
process with one torch CPU thread. Reported: the wall time of `Trainer.run` (building the agent, CUDA's first
kernels and, with `--compile`, torch.compile's warm-up included, as a user pays them), steps per second, and the
CUDA / CPU wall-time ratio (below 1: the GPU is faster).

    python bench/devices.py                                   # every case on cpu and, where there is a GPU, cuda
    python bench/devices.py --cases sac-pendulum edac-pendulum-medium-replay --devices cuda
    python bench/devices.py --out /some/folder                # where the .md and .json go (default bench/results)

The offline cases read the datasets of `make datasets` (MINARI_DATASETS_PATH, else ~/.minari/datasets).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from machine import cpu_name

HERE = Path(__file__).resolve().parent
MEDIUM_REPLAY = "dataset=rltrain/pendulum/medium-replay-v0"
# name: (rltrain overrides, budget); the budget is env steps (online) or gradient updates (offline)
CASES = {
    "ppo-cartpole": (["algo=ppo", "env=cartpole"], 50_000),
    "dqn-cartpole": (["algo=dqn", "env=cartpole"], 30_000),
    "sac-pendulum": (["algo=sac", "env=pendulum"], 6_000),  # 64x64 networks; updates start at step 1000
    "td3-pendulum": (["algo=td3", "env=pendulum"], 6_000),
    # SAC with 512x512 networks (1000 updates): where a GPU should win even with one env
    "sac-pendulum-512": (["algo=sac", "env=pendulum", "network.hidden=[512,512]"], 2_000),
    "mpc-pendulum": (["algo=mpc", "env=pendulum"], 600),
    "cql-pendulum-medium-replay": (["algo=cql", "env=pendulum", MEDIUM_REPLAY], 1_000),
    "iql-pendulum-medium-replay": (["algo=iql", "env=pendulum", MEDIUM_REPLAY], 4_000),
    "edac-pendulum-medium-replay": (["algo=edac", "env=pendulum", MEDIUM_REPLAY], 2_000),
}


def worker(case: str, device: str, compile_update: bool) -> dict:
    """Train one case on one device in this process and return its timing."""
    import torch

    from rltrain.agent import resolve_device
    from rltrain.cli import compose_plain
    from rltrain.trainer import Trainer

    overrides, budget = CASES[case]
    config = compose_plain([*overrides, f"device={device}", f"device.compile={str(compile_update).lower()}"])
    config.update(total_steps=budget, seed=0)
    config["eval"].update(every=0, episodes=2)
    config["log"]["progress"] = False
    config["checkpoint"]["every"] = 10**9
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        summary = Trainer(config, Path(run_dir)).run()
        wall = time.perf_counter() - started
    return {
        "case": case,
        "device": device,
        "compile": compile_update,
        "budget": budget,
        "wall_s": round(wall, 2),
        "steps_per_s": round(budget / wall, 1),
        "final_return": summary["eval_return_mean"],
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "auto_picks": resolve_device("auto", config["network"]["hidden"]).type,
    }


def run_one(case: str, device: str, compile_update: bool) -> dict | None:
    """One case in a fresh process; a failure is printed and left out of the table, the other cases still run."""
    command = [sys.executable, __file__, "--worker", case, device] + (["--compile"] if compile_update else [])
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        print(f"[devices] {case} on {device} failed:\n{done.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    by_case: dict[str, dict[str, dict]] = {}
    for row in rows:
        key = row["device"] + (" + compile" if row["compile"] else "")
        by_case.setdefault(row["case"], {})[key] = row
    columns = sorted({k for runs in by_case.values() for k in runs}, key=lambda k: (k != "cpu", k))
    lines = [
        "| case | budget | "
        + " | ".join(f"{c} wall s (steps/s)" for c in columns)
        + " | cuda / cpu wall | device=auto picks |",
        "| --- | --- | " + " | ".join("---" for _ in columns) + " | --- | --- |",
    ]
    for case, runs in by_case.items():
        cells = [f"{runs[c]['wall_s']} ({runs[c]['steps_per_s']})" if c in runs else "—" for c in columns]
        ratio = f"{runs['cuda']['wall_s'] / runs['cpu']['wall_s']:.2f}" if {"cpu", "cuda"} <= runs.keys() else "—"
        auto = next(iter(runs.values()))["auto_picks"]
        lines.append(f"| {case} | {CASES[case][1]} | " + " | ".join(cells) + f" | {ratio} | {auto} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    parser.add_argument("--devices", nargs="*", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--compile", action="store_true", help="also time cuda with device.compile=true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, compile_update=args.compile)))
        return
    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        sys.exit("bench/devices.py: --devices cuda needs a CUDA GPU and a CUDA build of torch; this machine has none.")
    runs = [(c, d, False) for c in args.cases for d in devices]
    if args.compile and "cuda" in devices:
        runs += [(c, "cuda", True) for c in args.cases]
    rows = []
    for case, device, compile_update in runs:
        row = run_one(case, device, compile_update)
        if row is not None:
            rows.append(row)
            print(f"[devices] {json.dumps(row)}", flush=True)
    if not rows:
        sys.exit("bench/devices.py: every case failed (see above).")
    gpu = next((r["gpu"] for r in rows if r["gpu"]), "none")
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    header = (
        f"# CPU vs CUDA, {stamp}\n\nSame preset, same fixed budget, seed 0, one torch CPU thread; wall time of the "
        f"training run. CPU: {cpu_name()} ({os.cpu_count()} cores); GPU: {gpu}; "
        f"torch {torch.__version__}. Produced by `python bench/devices.py` (`make bench-devices`).\n\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"devices_{stamp}.md").write_text(header + table(rows) + "\n")
    (args.out / f"devices_{stamp}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(header + table(rows))


if __name__ == "__main__":
    main()
