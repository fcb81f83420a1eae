"""Robustness of the tuned presets: the fraction of seeds whose final eval reaches the preset's threshold, under
each CPU kernel path this machine offers (`ATEN_CPU_CAPABILITY=default|avx2|avx512`).

Floating-point rounding differs between kernel paths (and between CPUs), and RL outcomes are chaotic, so a preset
that holds on two seeds of one machine can fail elsewhere. Each (preset, kernel path, seed) is one run of the
preset exactly as `rltrain algo=... env=... seed=...` trains it (its own eval schedule, final eval of 10
deterministic episodes). Results are appended to a JSON-lines file as runs finish, so an interrupted bench
resumes where it stopped (and a changed preset is re-measured: each result records a hash of the config it ran,
and the CPU: matrix products go to MKL, whose kernels differ between CPU models whatever the kernel path).
The imitation presets (BC, GAIL) learn from the expert datasets the imitation tests record (tests/experts.py),
recorded once per kernel path under bench/results/runs/robustness-datasets/ (the CartPole expert is a PPO run).
MPC on Pendulum (planning with a learned model; no SB3 counterpart, so not in the speed bench) is benched here too,
and the offline presets that the tests hold to a threshold, on the datasets of `make datasets`.

    python bench/robustness.py                          # every preset, seeds 0-19, every kernel path here
    python bench/robustness.py --only ppo-cartpole --seeds 0 1 2 --paths default
    python bench/robustness.py --report                 # only rewrite the table from the results so far
    python bench/robustness.py --only CASE --paths avx512 --record RUN_DIR ...   # count runs trained by hand

Writes bench/results/robustness.md (the table) from bench/results/robustness.jsonl (the runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import cpu_name  # noqa: E402

# the presets, their thresholds and the RL Zoo's figures, shared with the speed bench
from run import CASES, ZOO  # noqa: E402

RESULTS = HERE / "results"
RUNS = RESULTS / "robustness.jsonl"
TABLE = RESULTS / "robustness.md"
# presets that learn from the imitation tests' expert datasets, recorded per kernel path (tests/experts.py)
IMITATION = {
    "bc-cartpole-expert": ("bc", "cartpole", "CartPole-v1", 475.0, ["dataset=test/cartpole/expert-v0"], None),
    "bc-pendulum-expert": ("bc", "pendulum", "Pendulum-v1", -250.0, ["dataset=test/pendulum/expert-v0"], None),
    "gail-cartpole-expert10": ("gail", "cartpole", "CartPole-v1", 475.0, ["dataset=test/cartpole/expert10-v0"], None),
}
# model-based: no SB3 counterpart, so not in the speed bench's CASES (tests/test_mpc.py's threshold and budget)
PLANNING = {"mpc-pendulum": ("mpc", "pendulum", "Pendulum-v1", -300.0, [], None)}
# offline presets on the benchmark datasets of `make datasets` (built once, the same on every kernel path; the
# training is what varies), with tests/test_offline_critics.py's thresholds
OFFLINE = {
    "cql-cartpole-replay": ("cql", "cartpole", "CartPole-v1", 475.0, ["dataset=rltrain/cartpole/replay-v0"], None),
    "cql-pendulum-medium-replay": (
        "cql",
        "pendulum",
        "Pendulum-v1",
        -250.0,
        ["dataset=rltrain/pendulum/medium-replay-v0"],
        None,
    ),
    "iql-pendulum-medium-replay": (
        "iql",
        "pendulum",
        "Pendulum-v1",
        -250.0,
        ["dataset=rltrain/pendulum/medium-replay-v0"],
        None,
    ),
    "edac-pendulum-medium-replay": (
        "edac",
        "pendulum",
        "Pendulum-v1",
        -250.0,
        ["dataset=rltrain/pendulum/medium-replay-v0"],
        None,
    ),
}
PRESETS = {**CASES, **IMITATION, **PLANNING, **OFFLINE}
DATASETS = RESULTS / "runs" / "robustness-datasets"  # <kernel path>/minari: the expert datasets of that path
PATHS = ("default", "avx2", "avx512")
CPU_FLAGS = {"default": None, "avx2": "avx2", "avx512": "avx512f"}


def available_paths() -> list[str]:
    """Kernel paths this CPU can run: PyTorch refuses a capability the CPU lacks (it falls back silently)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return ["default"]
    return [p for p in PATHS if CPU_FLAGS[p] is None or CPU_FLAGS[p] in flags]


def preset_config(case: str, overrides: list[str]) -> dict:
    """The plain config the preset trains with (composed in a worker, so torch loads under its kernel path)."""
    from rltrain.cli import compose_plain

    algo, env, _, _, extra, _ = PRESETS[case]
    return compose_plain([f"algo={algo}", f"env={env}", *extra, *overrides])


def without_unset(value):
    """The config without keys left null, so that a new option nobody sets does not make a preset look new."""
    if isinstance(value, dict):
        return {k: without_unset(v) for k, v in value.items() if v is not None}
    return value


# options gained after runs were recorded, at the value that trains as before: (config group, its name or None for
# any, key) -> value; left out of the hash at that value, so the earlier runs still count (as options added as null
# are, above)
ADDED_AT_EARLIER_BEHAVIOUR = {
    ("algo", "sac", "anneal_lr"): False,
    ("algo", "iql", "actor_dropout"): 0.0,
    ("env", None, "flatten_observation"): False,
}


def config_hash(config: dict) -> str:
    """What decides a run's outcome besides seed and kernel path: the config without seed and logging keys."""
    kept = without_unset({k: v for k, v in config.items() if k not in ("seed", "log", "resume", "hparams_search")})
    for (group, name, key), value in ADDED_AT_EARLIER_BEHAVIOUR.items():
        section = kept.get(group, {})
        if name in (None, section.get("name")) and key in section and section[key] == value:
            kept[group] = {k: v for k, v in section.items() if k != key}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def worker(case: str, seeds: list[int], overrides: list[str], out: Path) -> None:
    """Train the preset on each seed in this process (ATEN_CPU_CAPABILITY was set before torch loaded)."""
    import tempfile

    import torch

    from rltrain.trainer import Trainer

    path = os.environ.get("ATEN_CPU_CAPABILITY", "default")
    if case in IMITATION:
        os.environ["MINARI_DATASETS_PATH"] = str(DATASETS / path / "minari")
    for seed in seeds:
        config = preset_config(case, overrides)
        digest = config_hash(config)
        config["seed"] = seed
        config["log"]["progress"] = False
        with tempfile.TemporaryDirectory() as run_dir:
            started = time.perf_counter()
            summary = Trainer(config, Path(run_dir)).run()
        if summary["interrupted"]:  # stopped by a signal (the bench was stopped): not a result
            print(f"[robustness] {case} {path} seed {seed}: interrupted, not recorded", flush=True)
            return
        row = result_row(case, path, torch.backends.cpu.get_cpu_capability(), digest, summary)
        row["wall_s"] = round(time.perf_counter() - started, 2)
        append_row(row, out)


def result_row(case: str, path: str, cpu_capability: str, digest: str, summary: dict) -> dict:
    """One run's line of robustness.jsonl, from its summary.json (the CPU is this machine's)."""
    return {
        "case": case,
        "path": path,
        "cpu_capability": cpu_capability,
        "cpu": cpu_name(),
        "seed": summary["seed"],
        "config": digest,
        "final_return": summary["eval_return_mean"],
        "best_return": summary["best_eval_return_mean"],
        "reached": summary["eval_return_mean"] >= PRESETS[case][3],
        "env_steps": summary["env_steps"],
        "evals": [[int(step), round(mean, 1)] for step, _, mean, _ in summary["eval_history"]],
        "wall_s": summary["wall_time_s"],
    }


def append_row(row: dict, out: Path) -> None:
    with out.open("a") as f:  # one short line per append: concurrent workers do not interleave
        f.write(json.dumps(row) + "\n")
    print(f"[robustness] {row['case']} {row['path']} seed {row['seed']}: {row['final_return']:.1f}", flush=True)


def record_runs(case: str, path: str, run_dirs: list[Path]) -> None:
    """Count runs trained by hand (`rltrain ...` on this machine under ATEN_CPU_CAPABILITY=path) for the preset: each
    must have finished, uninterrupted, with exactly the preset's config (the hash ignores seed and logging keys)."""
    digest = current_hashes([case], [])[case]
    ours = [r for r in load_runs() if (r["case"], r["path"], r["config"]) == (case, path, digest)]
    done = {(r["seed"], r.get("cpu")) for r in ours}
    for run_dir in run_dirs:
        summary_file = run_dir / "summary.json"
        if not summary_file.exists():
            raise SystemExit(f"{run_dir} has no summary.json: record only runs that have finished.")
        summary = json.loads(summary_file.read_text())
        if summary["interrupted"] or summary["env_steps"] < summary["config"]["total_steps"]:
            raise SystemExit(f"{run_dir} stopped before its budget: record only runs that have finished.")
        if config_hash(summary["config"]) != digest:
            raise SystemExit(f"{run_dir} did not train {case}'s config: run it with the preset as shipped.")
        row = result_row(case, path, path.upper(), digest, summary)
        if (row["seed"], row["cpu"]) in done:
            raise SystemExit(f"{case} {path} seed {row['seed']} of this CPU is recorded: not counted again.")
        append_row(row, RUNS)
        done.add((row["seed"], row["cpu"]))


def record_experts(path: str) -> None:
    """The imitation tests' expert datasets for one kernel path, recorded once (under that path: the CartPole expert
    is a PPO run), before any worker reads them."""
    root = DATASETS / path
    if (root / "recorded").exists():
        return
    print(f"[robustness] recording the expert datasets on the {path} path ...", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from experts import record_imitation_experts; record_imitation_experts(Path(sys.argv[2]))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": path, "MINARI_DATASETS_PATH": str(root / "minari")}
    subprocess.run([sys.executable, "-c", code, str(HERE.parent / "tests"), str(root)], env=env, check=True)
    (root / "recorded").touch()


def check_offline_datasets(cases: set[str]) -> None:
    """Stop before any run when an offline preset's dataset was not built (Minari's local layout: root/<id>)."""
    root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
    for case in sorted(cases):
        dataset_id = PRESETS[case][4][0].removeprefix("dataset=")
        if not (root / dataset_id).is_dir():
            raise SystemExit(f"{case} needs the dataset {dataset_id}, not under {root}: run `make datasets` first.")


def load_runs() -> list[dict]:
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def current_hashes(cases: list[str], overrides: list[str]) -> dict[str, str]:
    """Each preset's config hash, computed in a subprocess (composing needs Hydra; cheap, done once)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import robustness as r; "
        "overrides = json.loads(sys.argv[2]); "
        "print(json.dumps({c: r.config_hash(r.preset_config(c, overrides)) for c in sys.argv[3:]}))"
    )
    command = [sys.executable, "-c", code, str(HERE), json.dumps(overrides), *cases]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_all(cases: list[str], seeds: list[int], paths: list[str], overrides: list[str], jobs: int) -> None:
    hashes = current_hashes(cases, overrides)
    done = {(r["case"], r["path"], r["seed"]) for r in load_runs() if r["config"] == hashes.get(r["case"])}
    # one task per (case, path, seed), longest presets first so the workers end together
    tasks = [(c, p, s) for c in cases for p in paths for s in seeds if (c, p, s) not in done]
    print(f"[robustness] {len(tasks)} runs to do ({len(done)} already measured with the current presets)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for path in sorted({p for c, p, _ in tasks if c in IMITATION}):
        record_experts(path)
    check_offline_datasets({c for c, _, _ in tasks if c in OFFLINE})

    def launch(task):
        case, path, seed = task
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ATEN_CPU_CAPABILITY": path}
        # the Trainer's own messages stay in the worker; its one result line is shown
        done = subprocess.run(
            [sys.executable, __file__, "--worker", case, "--seeds", str(seed), "--out", str(RUNS)]
            + [f"--set={o}" for o in overrides],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{case} {path} seed {seed} failed:\n{done.stderr[-3000:]}")
        print(*(line for line in done.stdout.splitlines() if line.startswith("[robustness]")), sep="\n", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(launch, tasks))


def cpu_counts(runs: list[dict]) -> str:
    """'<cpu>: <n> runs' for each CPU the runs name, most runs first (rows from before the field: 'not recorded')."""
    counts = Counter(run.get("cpu", "not recorded") for run in runs)
    return "; ".join(f"{cpu}: {n} run{'s' if n > 1 else ''}" for cpu, n in counts.most_common()) or "none"


def table(cases: list[str], overrides: list[str]) -> str:
    """Per preset and kernel path: fraction of seeds at or above the threshold, min and median final return."""
    hashes = current_hashes(cases, overrides)
    runs = [r for r in load_runs() if r["case"] in hashes and r["config"] == hashes[r["case"]]]
    lines = [
        f"# Preset robustness, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        "Fraction of seeds whose final deterministic eval (10 episodes) reaches the threshold, per CPU kernel path "
        "(`ATEN_CPU_CAPABILITY`), with the minimum, median and mean final return, beside the RL Zoo's published "
        "return and its budget. Produced by `python bench/robustness.py` (`make robustness`); runs in "
        "`robustness.jsonl`.",
        "",
        "CPUs of the runs counted (the matrix-product kernels, MKL's, differ between CPU vendors and models whatever "
        f"the kernel path): {cpu_counts(runs)}.",
        "",
        "| preset | threshold | budget | kernel path | seeds | reached | min | median | mean | RL Zoo (budget) "
        "| failing seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        for path in PATHS:
            rows = sorted((r for r in runs if r["case"] == case and r["path"] == path), key=lambda r: r["seed"])
            if not rows:
                continue
            finals = [r["final_return"] for r in rows]
            threshold = PRESETS[case][3]  # today's, not the one recorded with the run: thresholds may be revised
            reached = sum(final >= threshold for final in finals)
            failing = ", ".join(f"{r['seed']} ({r['final_return']:.0f})" for r in rows if r["final_return"] < threshold)
            failing = failing or "—"
            zoo = f"{ZOO[case][0]:g} ({ZOO[case][1]})" if case in ZOO else "—"
            lines.append(
                f"| {case} | {threshold:g} | {rows[0]['env_steps']} | {path} | {len(rows)} | "
                f"{reached}/{len(rows)} = {reached / len(rows):.2f} | {min(finals):.1f} | "
                f"{statistics.median(finals):.1f} | {statistics.fmean(finals):.1f} | {zoo} | {failing} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(PRESETS), help="presets to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(range(20)))
    parser.add_argument("--paths", nargs="*", choices=PATHS, help="kernel paths (default: all this CPU has)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once (one torch thread each)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an extra rltrain override for every run"
    )
    parser.add_argument("--report", action="store_true", help="only rewrite the table from the results so far")
    parser.add_argument(
        "--record",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="count finished runs of one preset (--only CASE) trained by hand on this machine under one kernel path"
        " (--paths PATH)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.seeds, args.set, args.out)
        return
    cases = args.only or list(PRESETS)
    if args.record:
        if len(cases) != 1 or not args.paths or len(args.paths) != 1:
            raise SystemExit("--record needs the preset and the runs' kernel path: --only CASE --paths PATH.")
        record_runs(cases[0], args.paths[0], args.record)
    elif not args.report:
        paths = args.paths or available_paths()
        run_all(cases, args.seeds, paths, args.set, args.jobs)
    text = table(cases if args.set else list(PRESETS), args.set)
    print(text)
    if not args.set:  # the table of the presets as shipped; a variation is only printed
        TABLE.write_text(text)
        print(f"written: {TABLE}")


if __name__ == "__main__":
    main()
