"""`make offline-table`: the D4RL-style table of the offline algorithms: rows algorithms, columns datasets, cells
the final normalized score (mean and 95% bootstrap CI over seeds) at one fixed budget of gradient updates, and the
wall time of each run.

Every run is `rltrain algo=<algo> dataset=<id> seed=<s> total_steps=<updates>` (the dataset's env preset and the
algorithm's tuned preset for it apply; only the number of updates is overridden), one after the other. A run whose
folder already holds a summary.json of the same config (presets included) is read instead of trained again, so an
interrupted table continues where it stopped. Algorithms this build lacks (no conf/algo/<name>.yaml) and datasets
missing from the Minari root are skipped with a message. The CI is rltrain-report's percentile bootstrap (here of
the mean over seeds; with 3 seeds it is crude: read it as a range, not a test).

    python bench/offline.py                                   # the default rows and Pendulum columns, seeds 0-2
    python bench/offline.py --algos bc iql awr --updates 20000 --seeds 0 1 2
    python bench/offline.py --datasets rltrain/pendulum/medium-replay-v0 --set network.hidden=[256,256]

Writes bench/results/offline_<date>_<time>.md and .json; the runs go to bench/results/runs/offline/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "runs" / "offline"
ALGOS = ["bc", "cql", "iql", "awr", "edac", "sac_n"]
DATASETS = [f"rltrain/pendulum/{name}-v0" for name in ("random", "medium", "medium-replay", "expert", "medium-expert")]
NAMES = {"bc": "BC", "cql": "CQL", "iql": "IQL", "awr": "AWR", "edac": "EDAC", "sac_n": "SAC-N"}


def available_algos(algos: list[str]) -> list[str]:
    from rltrain.cli import config_dir

    present = []
    for algo in algos:
        if (config_dir() / "algo" / f"{algo}.yaml").exists():
            present.append(algo)
        else:
            print(f"skipping algo={algo}: this build has no conf/algo/{algo}.yaml", file=sys.stderr)
    return present


def available_datasets(dataset_ids: list[str]) -> list[str]:
    from rltrain import datasets

    local = set(datasets.local_ids())
    present = [d for d in dataset_ids if d in local]
    for missing in sorted(set(dataset_ids) - local):
        print(
            f"skipping dataset={missing}: not in the Minari root {datasets.dataset_path('')} (make datasets)",
            file=sys.stderr,
        )
    return present


def composed_config(overrides: list[str], dataset_id: str) -> dict:
    """The config `rltrain <overrides>` trains with (on the dataset's env preset, as the CLI picks it)."""
    from rltrain import datasets
    from rltrain.cli import compose_plain, config_dir

    env = datasets.env_overrides(dataset_id, config_dir() / "env")
    return compose_plain([*overrides, *env, "log.progress=false"])


def run_one(algo: str, dataset_id: str, seed: int, updates: int, extra: list[str], train: bool = True) -> dict:
    """Train one cell's seed (or read it back when a run of the same config already finished) and return its
    figures; with train=False a run not finished yet is reported missing instead of trained."""
    run_dir = RUNS / f"{algo}-{dataset_id.replace('/', '_')}-{updates}-seed{seed}"
    overrides = [f"algo={algo}", f"dataset={dataset_id}", f"seed={seed}", f"total_steps={updates}", *extra]
    config = composed_config(overrides, dataset_id)
    config_file, summary_file = run_dir / "bench_config.json", run_dir / "summary.json"
    if summary_file.exists() and config_file.exists() and json.loads(config_file.read_text()) == config:
        summary = json.loads(summary_file.read_text())
    elif not train:
        return {"algo": algo, "dataset": dataset_id, "seed": seed, "error": "not run yet", "command": overrides}
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [str(Path(sys.executable).parent / "rltrain"), *overrides, "log.progress=false"]
        command.append(f"hydra.run.dir={run_dir}")
        print(f"rltrain {' '.join(overrides)}", file=sys.stderr, flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            error = (result.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"  failed: {error}", file=sys.stderr)
            return {"algo": algo, "dataset": dataset_id, "seed": seed, "error": error, "command": overrides}
        config_file.write_text(json.dumps(config))
        summary = json.loads(summary_file.read_text())
    row = {
        "algo": algo,
        "dataset": dataset_id,
        "seed": seed,
        "updates": summary["env_steps"],
        "eval_return": summary["eval_return_mean"],
        "normalized_score": summary.get("normalized_score"),
        "wall_s": summary["wall_time_s"],
        "command": overrides,
        "run": str(run_dir.relative_to(HERE.parent)),
    }
    print(
        f"  {algo} {dataset_id} seed {seed}: return {row['eval_return']:.1f}, normalized "
        f"{row['normalized_score']:.1f}, {row['wall_s']:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return row


def cell(rows: list[dict], resamples: int) -> dict | None:
    from rltrain.report import stratified_bootstrap_ci

    scores = np.array([r["normalized_score"] for r in rows if r.get("normalized_score") is not None])
    if scores.size == 0:
        return None
    low, high = stratified_bootstrap_ci([scores], statistic=np.mean, resamples=resamples)
    walls = [r["wall_s"] for r in rows if "wall_s" in r]
    return {
        "mean": float(scores.mean()),
        "ci_low": low,
        "ci_high": high,
        "seeds": int(scores.size),
        "wall_s_mean": float(np.mean(walls)),
    }


def markdown(table: dict, rows: list[dict], algos: list[str], dataset_ids: list[str], args) -> str:
    short = [d.split("/", 1)[1] if d.count("/") == 2 else d for d in dataset_ids]
    lines = [
        f"# Offline RL: normalized score after {args.updates} gradient updates",
        "",
        f"{datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPU cores, runs one after another. Cells: mean normalized "
        f"score over seeds {' '.join(map(str, args.seeds))} (100 = the dataset's ref_max_score, 0 = its "
        "ref_min_score) and the 95% percentile-bootstrap CI of that mean, then the mean wall time per run. Final "
        "deterministic eval of each run (eval.episodes of its preset). Overrides: "
        + (" ".join(args.set) or "none")
        + ".",
        "",
        "| algorithm | " + " | ".join(short) + " |",
        "| --- |" + " --- |" * len(short),
    ]
    for algo in algos:
        cells = []
        for dataset_id in dataset_ids:
            c = table.get(algo, {}).get(dataset_id)
            if c is None:
                cells.append("—")
            else:
                fewer = f", {c['seeds']} of {len(args.seeds)} seeds" if c["seeds"] < len(args.seeds) else ""
                cells.append(
                    f"{c['mean']:.1f} [{c['ci_low']:.1f}, {c['ci_high']:.1f}] ({c['wall_s_mean']:.0f} s{fewer})"
                )
        lines.append(f"| {NAMES.get(algo, algo)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Runs",
        "",
        "| algorithm | dataset | seed | updates | final eval return | normalized score | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "error" in r:
            what = r["error"] if r["error"] == "not run yet" else f"failed: {r['error']}"
            lines.append(f"| {r['algo']} | {r['dataset']} | {r['seed']} | — | {what} | — | — |")
            continue
        lines.append(
            f"| {r['algo']} | {r['dataset']} | {r['seed']} | {r['updates']} | {r['eval_return']:.1f} | "
            f"{r['normalized_score']:.1f} | {r['wall_s']:.1f} |"
        )
    lines += [
        "",
        "Reproduce a run: `rltrain <its command in the .json>`, e.g. `rltrain " + " ".join(rows[0]["command"]) + "`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("--algos", nargs="+", default=ALGOS, help="rows (default: %(default)s)")
    parser.add_argument("--datasets", nargs="+", default=DATASETS, help="columns: Minari ids (default: Pendulum's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--updates", type=int, default=50_000, help="gradient updates per run (default: %(default)s)")
    parser.add_argument("--set", nargs="*", default=[], help="extra rltrain overrides for every run")
    parser.add_argument("--no-train", action="store_true", help="only report the runs already finished; train nothing")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    args = parser.parse_args()

    algos, dataset_ids = available_algos(args.algos), available_datasets(args.datasets)
    if not algos or not dataset_ids:
        sys.exit("nothing to run: no algorithm or no dataset of the table is available here.")
    started = time.time()
    rows, table = [], {}
    for algo in algos:
        for dataset_id in dataset_ids:
            seeds = [
                run_one(algo, dataset_id, seed, args.updates, args.set, train=not args.no_train) for seed in args.seeds
            ]
            rows += seeds
            found = cell([r for r in seeds if "error" not in r], args.resamples)
            if found is not None:
                table.setdefault(algo, {})[dataset_id] = found
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"offline_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    text = markdown(table, rows, algos, dataset_ids, args)
    stem.with_suffix(".md").write_text(text)
    payload = {"updates": args.updates, "seeds": args.seeds, "overrides": args.set, "table": table, "runs": rows}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    print(text)
    print(f"written: {stem}.md, {stem}.json ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
