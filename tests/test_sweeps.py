"""Sweeps as users start them: basic, joblib, Optuna (in memory and sqlite), submitit and Ray launchers; failed
jobs do not stop a sweep; every job of a sweep writes into the same sweep folder."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, run_cli

TINY = ("total_steps=600", "eval.every=0", "eval.episodes=2", "log.progress=false")


def sweep_dir(workdir: Path) -> Path:
    [folder] = (workdir / "outputs" / "multirun").iterdir()
    return folder


def summaries(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("summary.json"))]


def test_basic_multirun_writes_one_folder_per_job_with_hparams(workdir):
    result = run_cli("-m", "algo=ppo,dqn", "seed=0", *TINY, cwd=workdir)
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(workdir)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["0", "1"]
    assert sorted(s["algo"] for s in summaries(folder)) == ["dqn", "ppo"]
    for job in ("0", "1"):
        events = list((folder / job).glob("events.out.tfevents.*"))
        assert events and b"hparams/eval_return_mean" in events[0].read_bytes()


def test_joblib_runs_jobs_in_parallel_processes_with_one_torch_thread_each(workdir):
    result = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", *TINY, cwd=workdir)
    assert result.returncode == 0, result.stderr
    jobs = summaries(sweep_dir(workdir))
    assert sorted(s["seed"] for s in jobs) == [0, 1]
    assert all(s["config"]["threads"] == 1 for s in jobs)


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(workdir):
    result = run_cli("-m", "num_envs=0,2", *TINY, cwd=workdir)
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(workdir)
    failed = json.loads((folder / "0" / "failed.json").read_text())
    assert failed["error"] == "num_envs=0 must be a positive integer." and "num_envs=0" in failed["overrides"]
    assert (folder / "1" / "summary.json").exists()


def test_a_sweep_run_again_skips_finished_jobs_and_continues_the_others(workdir):
    command = ("-m", "seed=0,1", "hydra.sweep.dir=sweep", "checkpoint.every=256", *TINY)
    assert run_cli(*command, cwd=workdir).returncode == 0
    finished = (workdir / "sweep" / "0" / "summary.json").read_text()
    (workdir / "sweep" / "1" / "summary.json").unlink()  # as if job 1 had been killed after its last checkpoint
    again = run_cli(*command, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert f"{workdir / 'sweep' / '0'} already finished" in again.stdout
    assert f"Continuing {workdir / 'sweep' / '1'} from step 600" in again.stdout
    assert (workdir / "sweep" / "0" / "summary.json").read_text() == finished
    assert json.loads((workdir / "sweep" / "1" / "summary.json").read_text())["env_steps"] == 600


def optuna_sweep(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "-m", "hparams_search=ppo_cartpole", "hydra.sweeper.n_trials=3", "sweep.seeds=2",
        "total_steps=600", "eval.episodes=2", "log.progress=false", *extra, cwd=workdir,
    )  # fmt: skip


def test_optuna_search_averages_seeds_per_trial_and_writes_its_results(workdir):
    result = optuna_sweep(workdir)
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(workdir)
    trials = sorted(p for p in folder.iterdir() if p.is_dir())
    assert [p.name for p in trials] == ["0", "1", "2"]
    for trial in trials:
        per_seed = [json.loads((trial / f"seed_{s}" / "summary.json").read_text())["eval_return_mean"] for s in (0, 1)]
        assert json.loads((trial / "sweep_result.json").read_text())["mean"] == pytest.approx(sum(per_seed) / 2)
    results = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) >= {"algo.lr", "algo.gamma"}
    best = max(json.loads((t / "sweep_result.json").read_text())["mean"] for t in trials)
    assert results["best_value"] == pytest.approx(best)


def test_optuna_study_in_sqlite_resumes_across_commands(workdir):
    import optuna

    storage = f"sqlite:///{workdir / 'study.db'}"
    for _ in range(2):
        result = optuna_sweep(workdir, "hydra.sweeper.n_trials=2", "sweep.seeds=1", f"hydra.sweeper.storage={storage}")
        assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="ppo_cartpole", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4


def test_optuna_records_a_failed_trial_and_goes_on(workdir):
    # num_envs=0 is refused: with the sampler seeded, some trials draw it and fail, the others train
    result = optuna_sweep(workdir, "sweep.seeds=1", "hydra.sweeper.n_trials=4", "num_envs=choice(0,4)")
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(workdir)
    failed = [p.parent.name for p in folder.glob("*/failed.json")]
    trained = [p.parent.name for p in folder.glob("*/summary.json")]
    assert failed and trained and len(failed) + len(trained) == 4
    results = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    assert results["best_params"]["num_envs"] == 4


def test_submitit_local_runs_two_jobs(workdir):
    result = run_cli("-m", "hydra/launcher=submitit_local", "seed=0,1", *TINY, cwd=workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    assert sorted(s["seed"] for s in summaries(sweep_dir(workdir))) == [0, 1]


def running_child(pid: int) -> int:
    """The process `pid` started (submitit's local controller starts the job's process)."""
    while True:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)


@pytest.mark.slow
def test_a_preempted_submitit_job_checkpoints_requeues_itself_and_continues(workdir):
    command = [str(BIN / "rltrain"), "-m", "hydra/launcher=submitit_local", "hydra.sweep.dir=sweep", "seed=0"]
    command += ["total_steps=4096", "checkpoint.every=256", "eval.every=0", "eval.episodes=2", "log.progress=false"]
    sweep = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_dir = workdir / "sweep" / "0"
    while not (job_dir / "checkpoints" / "last.pt").exists():
        assert sweep.poll() is None, sweep.communicate()
        time.sleep(0.1)
    [controller] = [p for p in (workdir / "sweep" / ".submitit").iterdir() if p.name.isdigit()]
    os.kill(running_child(int(controller.name)), signal.SIGUSR2)  # what SLURM sends ahead of preemption
    _, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    log = (controller / f"{controller.name}_0_log.out").read_text()
    stopped = re.search(r"Stopped at env step (\d+); checkpoint saved", log)
    assert stopped and "Requeued job" in log and f"Continuing {job_dir.resolve()} from step {stopped[1]}." in log
    summary = json.loads((job_dir / "summary.json").read_text())
    assert summary["env_steps"] == 4096 and not summary["interrupted"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_launcher_joins_a_local_cluster_and_all_jobs_share_the_sweep_folder(workdir):
    ray = shutil.which("ray", path=str(BIN))
    if ray is None:
        pytest.skip("the cluster extra (ray) is not installed")
    # a head on the loopback interface only: no external address, no dashboard, no usage reporting, and no token
    # auth (a local `ray.init()` leaves a token in ~/.ray that would otherwise switch it on for one side only)
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    port = free_port()
    start = [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=180, cwd=workdir)
    try:
        result = run_cli(
            "-m", "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            "seed=0,1", *TINY, cwd=workdir, env=env, timeout=600,
        )  # fmt: skip
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(workdir)
    assert sorted(s["seed"] for s in summaries(folder)) == [0, 1]
    assert (folder / "multirun.yaml").exists()
