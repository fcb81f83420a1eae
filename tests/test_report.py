"""rltrain-report: IQM and stratified-bootstrap CIs against hand computations, grouping, files and errors."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import compose_config, run_cli
from rltrain.errors import RltrainError
from rltrain.report import iqm, report, stratified_bootstrap_ci


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([1, 2, 3, 4, 5, 6, 7, 8])) == 4.5  # drops 1, 2 and 7, 8
    assert iqm(np.array([1, 2, 3, 100])) == 2.5  # the outlier does not move it
    assert iqm(np.array([5, 1, 9, 3, 7])) == 5.0  # one trimmed from each end: mean of 3, 5, 7
    assert iqm(np.array([4.0])) == 4.0


def test_bootstrap_ci_of_two_runs_spans_every_resample_mean():
    # two runs 0 and 10: resampled means are 0, 5 or 10 with probability 1/4, 1/2, 1/4, so the 95% interval is
    # [0, 10]; with three identical runs there is nothing to resample
    assert stratified_bootstrap_ci([np.array([0.0, 10.0])], resamples=2000, seed=0) == (0.0, 10.0)
    assert stratified_bootstrap_ci([np.array([3.0, 3.0, 3.0])], resamples=200, seed=0) == (3.0, 3.0)


def test_bootstrap_resamples_within_each_stratum():
    # env A always scores 1, env B always 3: every stratified resample keeps four of each, so its IQM is exactly
    # mean(1, 1, 3, 3) = 2; pooled resampling would mix them unevenly and widen the interval
    assert stratified_bootstrap_ci([np.ones(4), np.full(4, 3.0)], resamples=500, seed=1) == (2.0, 2.0)
    assert stratified_bootstrap_ci([np.r_[np.ones(4), np.full(4, 3.0)]], resamples=500, seed=1) != (2.0, 2.0)


def test_bootstrap_is_reproducible_with_its_seed():
    scores = [np.array([1.0, 4.0, 2.0, 8.0, 5.0])]
    assert stratified_bootstrap_ci(scores, seed=7) == stratified_bootstrap_ci(scores, seed=7)


def fake_run(folder: Path, lr: float, seed: int, final: float, algo: str = "ppo") -> None:
    config = compose_config(f"algo={algo}", "env=cartpole", f"seed={seed}", f"algo.lr={lr}")
    folder.mkdir(parents=True)
    summary = {"config": config, "eval_return_mean": final, "seed": seed}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_synthetic_sweep_groups_by_the_overridden_key_and_lists_failures(tmp_path):
    finals = {0.001: [10.0, 20.0, 30.0, 40.0], 0.003: [100.0, 100.0, 100.0, 400.0]}
    job = 0
    for lr, values in finals.items():
        for seed, value in enumerate(values):
            fake_run(tmp_path / "sweep" / str(job), lr, seed, value)
            job += 1
    (tmp_path / "sweep" / "8").mkdir()
    (tmp_path / "sweep" / "8" / "failed.json").write_text(
        json.dumps({"error": "training diverged at step 4096", "overrides": ["algo.lr=1.0"]})
    )
    result = report([tmp_path / "sweep"], tmp_path / "out", resamples=300, progress=False)
    rows = {r["group"]: r for r in result["rows"]}
    assert set(rows) == {"ppo CartPole-v1 algo.lr=0.001", "ppo CartPole-v1 algo.lr=0.003"}
    best = rows["ppo CartPole-v1 algo.lr=0.003"]
    assert (best["runs"], best["mean"], best["median"], best["iqm"]) == (4, 175.0, 100.0, 100.0)
    assert best["seeds"] == "0 1 2 3" and best["ci_low"] <= 100.0 <= best["ci_high"]
    assert result["rows"][0]["group"] == "ppo CartPole-v1 algo.lr=0.003", "groups are ranked by IQM"
    with (tmp_path / "out" / "report.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["iqm"]) for r in table] == [100.0, 25.0]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Failed jobs (1)" in text and "training diverged at step 4096" in text and "algo.lr=1.0" in text
    assert result["plotted"] == [] and not (tmp_path / "out" / "curves.png").exists(), "no event files, no curves"


def test_keys_that_differ_only_because_the_algorithm_differs_are_not_groups(tmp_path):
    fake_run(tmp_path / "0", 0.001, 0, 1.0, algo="ppo")
    fake_run(tmp_path / "1", 0.001, 0, 2.0, algo="dqn")
    result = report([tmp_path], tmp_path / "out", resamples=50, progress=False)
    assert sorted(r["group"] for r in result["rows"]) == ["dqn CartPole-v1", "ppo CartPole-v1"]


def test_real_tiny_sweep_report_with_curves(workdir):
    sweep = run_cli(
        "-m", "algo.lr=0.001,0.003", "seed=0,1", "total_steps=1200", "eval.every=400", "eval.episodes=2",
        "log.progress=false", cwd=workdir,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    [sweep_dir] = (workdir / "outputs" / "multirun").iterdir()
    result = run_cli(str(sweep_dir), script="rltrain-report", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "ppo CartPole-v1 algo.lr=0.001 | 2 (0 1)" in result.stdout
    png = sweep_dir / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.std() > 0.05, "the plot is blank"
    plotted = report([sweep_dir], workdir / "again", resamples=50, progress=False)["plotted"]
    assert sorted(plotted) == ["ppo CartPole-v1 algo.lr=0.001", "ppo CartPole-v1 algo.lr=0.003"]
    other = report([sweep_dir], workdir / "episodes", metric="charts/episodic_return", resamples=50, progress=False)
    assert all(r["mean"] > 0 for r in other["rows"])


def test_a_folder_without_runs_and_an_unknown_metric_are_clear_errors(workdir):
    (workdir / "empty").mkdir()
    result = run_cli(str(workdir / "empty"), script="rltrain-report", cwd=workdir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no runs under" in result.stderr and "summary.json" in result.stderr
    run_cli("total_steps=300", "eval.episodes=1", "log.progress=false", cwd=workdir)
    with pytest.raises(RltrainError, match=r"--metric eval/nope .*eval/return_mean"):
        report([workdir / "outputs"], workdir / "out", metric="eval/nope", progress=False)
