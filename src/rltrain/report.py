"""`rltrain-report PATH...`: compare many runs with honest statistics.

Finds every run (a folder with summary.json) and every failed sweep job (failed.json) under the given paths,
groups the runs by the config values that differ between them (seeds pooled), and reports per group the number
of runs, mean, median, interquartile mean (IQM) and a 95% stratified-bootstrap confidence interval of the IQM, as
recommended by Agarwal et al. (2021), "Deep RL at the Edge of the Statistical Precipice". Runs of a group that
come from different envs are resampled within their own env (the strata). Writes report.md, report.csv and
curves.png (the metric against env steps per group: mean with a 95% bootstrap band).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rltrain.errors import RltrainError
from rltrain.logger import flatten

DEFAULT_METRIC = "eval/return_mean"
# config keys that never define a group: the seed is pooled, the rest is bookkeeping
IGNORED_KEYS = ("seed", "resume", "log.", "checkpoint.", "eval.every", "sweep.", "threads")


@dataclass
class Run:
    path: Path
    config: dict
    summary: dict
    final: float | None = None  # the metric's final value
    curve: tuple[np.ndarray, np.ndarray] | None = None  # (env steps, values)


@dataclass
class Group:
    label: str
    runs: list[Run] = field(default_factory=list)


# --- statistics -------------------------------------------------------------------------------------------
def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the scores (25% trimmed from each end, rounded down)."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = int(0.25 * ordered.size)
    return float(ordered[cut : ordered.size - cut].mean())


def stratified_bootstrap_ci(
    scores_by_stratum: list[np.ndarray], statistic=iqm, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of `statistic` over all scores, resampling runs with replacement within each stratum."""
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    strata = [np.asarray(s, dtype=np.float64) for s in scores_by_stratum]
    for b in range(resamples):
        values[b] = statistic(np.concatenate([s[rng.integers(0, s.size, s.size)] for s in strata]))
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# --- finding and reading runs -----------------------------------------------------------------------------
def natural_key(text: str) -> list:
    """Sort job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_runs(paths: list[Path]) -> tuple[list[Run], list[dict]]:
    runs, failures = [], []
    for root in paths:
        if not root.exists():
            raise RltrainError(f"{root} does not exist; pass run or sweep folders (e.g. outputs/multirun/<sweep>).")
        for summary_path in sorted(root.rglob("summary.json"), key=lambda p: natural_key(str(p))):
            summary = json.loads(summary_path.read_text())
            if "config" not in summary:
                continue  # not an rltrain run summary
            runs.append(Run(summary_path.parent, summary["config"], summary))
        for failed_path in sorted(root.rglob("failed.json"), key=lambda p: natural_key(str(p))):
            failures.append({"path": str(failed_path.parent), **json.loads(failed_path.read_text())})
    return runs, failures


def event_files(run_dir: Path):
    """A loaded EventAccumulator per TensorBoard file of the run (a resumed run has several)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        yield accumulator


def read_scalars(run_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of one TensorBoard scalar of a run, its files merged, or None."""
    points: dict[int, float] = {}
    for accumulator in event_files(run_dir):
        if tag in accumulator.Tags()["scalars"]:
            points.update({event.step: event.value for event in accumulator.Scalars(tag)})
    if not points:
        return None
    steps = np.array(sorted(points))
    return steps, np.array([points[s] for s in steps])


def scalar_tags(run_dir: Path) -> list[str]:
    return sorted({tag for accumulator in event_files(run_dir) for tag in accumulator.Tags()["scalars"]})


def load_metric(runs: list[Run], metric: str, progress: bool) -> None:
    from tqdm import tqdm

    for run in tqdm(runs, desc="reading runs", unit="run", disable=not progress, file=sys.stderr):
        run.curve = read_scalars(run.path, metric)
        if run.curve is not None:
            run.final = float(run.curve[1][-1])
        elif metric == DEFAULT_METRIC and run.summary.get("eval_return_mean") is not None:
            run.final = float(run.summary["eval_return_mean"])
    if all(run.final is None for run in runs):
        available = scalar_tags(runs[0].path)
        raise RltrainError(
            f"--metric {metric} is not in any run's TensorBoard scalars; pick one of: {', '.join(available)}."
        )


def group_runs(runs: list[Run], group_by: list[str] | None) -> list[Group]:
    """Groups named by algo, env and every other key that varies between runs of the same algo and env (what a
    sweep overrode); keys that only differ because the algorithm or its tuned preset differs are implied."""
    flat = [flatten(run.config) for run in runs]
    if group_by:
        unknown = [k for k in group_by if all(k not in f for f in flat)]
        if unknown:
            raise RltrainError(f"--group-by {', '.join(unknown)} is not a config key of these runs (e.g. algo.name).")
        keys = group_by
    else:
        cells: dict[tuple, list[dict]] = {}
        for f in flat:
            cells.setdefault((f.get("algo.name"), f.get("env.id")), []).append(f)
        varying = {
            k
            for members in cells.values()
            for k in set().union(*members)
            if not k.startswith(IGNORED_KEYS) and len({json.dumps(m.get(k), sort_keys=True) for m in members}) > 1
        }
        keys = ["algo.name", "env.id", *sorted(varying - {"algo.name", "env.id"})]
    groups: dict[str, Group] = {}
    for run, f in zip(runs, flat):
        label = " ".join(str(f.get(k)) if k in ("algo.name", "env.id") else f"{k}={f.get(k)}" for k in keys)
        groups.setdefault(label, Group(label)).runs.append(run)
    return list(groups.values())


# --- output -----------------------------------------------------------------------------------------------
def group_rows(groups: list[Group], resamples: int, seed: int) -> list[dict]:
    rows = []
    for group in groups:
        finished = [r for r in group.runs if r.final is not None]
        scores = np.array([r.final for r in finished])
        by_env: dict[str, list[float]] = {}
        for r in finished:
            by_env.setdefault(r.config["env"]["id"], []).append(r.final)
        row = {"group": group.label, "runs": len(finished), "envs": ", ".join(sorted(by_env))}
        if finished:
            low, high = stratified_bootstrap_ci([np.array(v) for v in by_env.values()], iqm, resamples, seed=seed)
            row.update(
                mean=float(scores.mean()),
                median=float(np.median(scores)),
                iqm=iqm(scores),
                ci_low=low,
                ci_high=high,
                seeds=" ".join(str(r.config["seed"]) for r in finished),
            )
        rows.append(row)
    return sorted(rows, key=lambda r: -r.get("iqm", -np.inf))


def write_csv(rows: list[dict], path: Path) -> None:
    columns = ["group", "envs", "runs", "seeds", "mean", "median", "iqm", "ci_low", "ci_high"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def markdown(rows: list[dict], failures: list[dict], metric: str, resamples: int) -> str:
    lines = [
        "# rltrain report",
        "",
        f"Metric: final `{metric}` per run. IQM: mean of the middle 50% of runs. CI: 95% stratified bootstrap "
        f"of the IQM ({resamples} resamples, runs resampled within each env).",
        "",
        "| group | runs (seeds) | mean | median | IQM | IQM 95% CI |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["runs"]:
            lines.append(
                f"| {r['group']} | {r['runs']} ({r['seeds']}) | {r['mean']:.2f} | {r['median']:.2f} | {r['iqm']:.2f} | "
                f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] |"
            )
        else:
            lines.append(f"| {r['group']} | 0 | — | — | — | — |")
    if failures:
        lines += ["", f"## Failed jobs ({len(failures)})", "", "| job | overrides | error |", "| --- | --- | --- |"]
        for f in failures:
            lines.append(f"| {f['path']} | {' '.join(f.get('overrides', []))} | {f['error']} |")
    return "\n".join(lines) + "\n"


def plot_curves(groups: list[Group], metric: str, path: Path, resamples: int, seed: int) -> list[str]:
    """Plot and save the curves; returns the labels of the groups drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    if not any(r.curve is not None for g in groups for r in g.runs):
        return []  # runs without TensorBoard files: a table, no plot
    figure, axes = plt.subplots(figsize=(8, 5))
    drawn = []
    for group in groups:
        curves = [r.curve for r in group.runs if r.curve is not None]
        if not curves:
            continue
        # each run on the common grid of all their steps, within the range it covers
        grid = np.unique(np.concatenate([steps for steps, _ in curves]))
        values = np.full((len(curves), grid.size), np.nan)
        for i, (steps, ys) in enumerate(curves):
            inside = (grid >= steps[0]) & (grid <= steps[-1])
            values[i, inside] = np.interp(grid[inside], steps, ys)
        samples = rng.integers(0, len(curves), (min(resamples, 500), len(curves)))
        with warnings.catch_warnings():  # a resample may hold no run covering a late step: NaN there, no band
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
            boot = np.nanmean(values[samples], axis=1)  # [resamples, grid]
            low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        (line,) = axes.plot(grid, mean, label=f"{group.label} (n={len(curves)})")
        axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        drawn.append(group.label)
    axes.set_xlabel("env steps")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: mean over runs, 95% bootstrap band")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return drawn


def report(
    paths: list[Path],
    out: Path,
    metric: str = DEFAULT_METRIC,
    group_by: list[str] | None = None,
    resamples: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    runs, failures = find_runs(paths)
    if not runs and not failures:
        names = ", ".join(str(p) for p in paths)
        raise RltrainError(f"no runs under {names}: a run folder has a summary.json; train with rltrain first.")
    out.mkdir(parents=True, exist_ok=True)
    groups, rows, plotted = [], [], []
    if runs:
        load_metric(runs, metric, progress)
        groups = group_runs(runs, group_by)
        rows = group_rows(groups, resamples, seed)
        plotted = plot_curves(groups, metric, out / "curves.png", resamples, seed)
    text = markdown(rows, failures, metric, resamples)
    (out / "report.md").write_text(text)
    write_csv(rows, out / "report.csv")
    return {"rows": rows, "failures": failures, "text": text, "groups": groups, "plotted": plotted}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rltrain-report", description=__doc__.splitlines()[0].split("`: ", 1)[1])
    parser.add_argument("paths", nargs="+", type=Path, help="run folders, sweep folders or outputs/")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="TensorBoard scalar (default: %(default)s)")
    parser.add_argument("--group-by", nargs="*", help="config keys defining groups (default: the keys that differ)")
    parser.add_argument("--out", type=Path, help="where report.md/csv and curves.png go (default: the first path)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    args = parser.parse_args(argv)
    out = args.out or (args.paths[0] if args.paths[0].is_dir() else Path.cwd())
    try:
        result = report(args.paths, out, args.metric, args.group_by, args.resamples, args.seed, sys.stderr.isatty())
    except RltrainError as exc:
        print(f"rltrain-report: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(result["text"])
    print(
        f"written: {out / 'report.md'}, {out / 'report.csv'}" + (f", {out / 'curves.png'}" if result["plotted"] else "")
    )


if __name__ == "__main__":
    main()
