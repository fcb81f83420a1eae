"""What the benches against another library share (bench/vs_imitation.py, bench/vs_d3rlpy.py): the child processes
each run lives in (one thread, timed with getrusage), rltrain's CLI and presets, and the report's formatting.

The peer library always runs in its own venv (its pins clash with rltrain's), from a script that imports neither
rltrain nor minari but this module (peer_args), which therefore imports only the standard library at its top; the
driver runs in rltrain's venv, one child at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
EVAL_SEED_OFFSET = 10_000  # rltrain's eval env seed is the run's seed + 10000 (rltrain.evaluate)


def child_env(minari_root: Path | None = None) -> dict:
    """The environment of every child: one OpenMP/MKL thread, rltrain's sources importable, and the Minari root
    (None: the one this process has, MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if minari_root is not None:
        env["MINARI_DATASETS_PATH"] = str(minari_root)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def peer_env(env: dict) -> dict:
    """A child environment for the peer library's python: nothing of rltrain's (no PYTHONPATH)."""
    return {k: v for k, v in env.items() if k != "PYTHONPATH"}


def timed_child(command: list[str], env: dict) -> tuple[float, float]:
    """Run a child process to its end; its wall time and its CPU time (user + system) from getrusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def rltrain_cli(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "rltrain.cli", *overrides, "log.progress=false"]


def timed_rltrain(overrides: list[str], run_dir: Path, env: dict) -> tuple[dict, dict]:
    """`rltrain <overrides>` in a timed child writing to run_dir: the bench's figures of the run, and its summary."""
    process_wall, process_cpu = timed_child(rltrain_cli(*overrides, f"hydra.run.dir={run_dir}"), env)
    summary = json.loads((run_dir / "summary.json").read_text())
    figures = {
        "library": "rltrain",
        "steps": summary["env_steps"],
        "run_s": summary["wall_time_s"],
        "return_mean": summary["eval_return_mean"],
        "return_std": summary["eval_return_std"],
        "process_wall_s": process_wall,
        "process_cpu_s": process_cpu,
    }
    return figures, summary


def timed_peer(python: Path, script: Path, data: Path, seed: int, settings: dict, out: Path, env: dict, *extra: str):
    """The peer's script under its venv's python in a timed child (nothing of rltrain's environment), with the
    arguments peer_args() reads (and `extra` ones): the result it wrote to `out`, the child's wall and CPU time."""
    command = [str(python), str(script), *extra, "--data", str(data), "--seed", str(seed)]
    command += ["--settings", json.dumps(settings), "--out", str(out)]
    process_wall, process_cpu = timed_child(command, peer_env(env))
    return {**json.loads(out.read_text()), "process_wall_s": process_wall, "process_cpu_s": process_cpu}


def peer_args(description: str, settings_help: str, algos: list[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """The command line of a peer script (timed_peer's): --data, --seed, --settings (JSON, returned parsed), --out,
    and --algo when the script trains more than one algorithm."""
    parser = argparse.ArgumentParser(description=description)
    if algos:
        parser.add_argument("--algo", choices=algos, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--settings", required=True, help=f"JSON: {settings_help}")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    return args, json.loads(args.settings)


def preset_config(algo: str, env: str) -> dict:
    """The plain config rltrain's tuned preset for (algo, env) trains with."""
    from rltrain.cli import compose_plain

    return compose_plain([f"algo={algo}", f"env={env}"])


def fmt(value, digits=1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def median_ratio(ours: list[float], theirs: list[float]) -> str:
    return fmt(statistics.median(ours) / statistics.median(theirs), 2) if ours and theirs else "—"


def machine_sentence() -> str:
    return (
        f"Machine: {cpu_name()}, {os.cpu_count()} cores shared with other jobs, so "
        "wall times are inflated by contention: the CPU time of each child process (user + system) is the steadier "
        "figure. Every run uses one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)); runs one at a time."
    )
