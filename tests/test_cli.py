"""The CLIs through a subprocess, as a user types them: training, errors, multirun, evaluation."""

import ctypes.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ALGOS, run_cli

TINY = ["total_steps=256", "eval.episodes=2", "algo.rollout_steps=16", "log.every=64"]


def run_folders(workdir: Path) -> list[Path]:
    return sorted(p.parent for p in workdir.glob("outputs/*/*/summary.json"))


def test_default_training_writes_summary_checkpoints_and_tensorboard(workdir):
    result = run_cli(*TINY, cwd=workdir)
    assert result.returncode == 0, result.stderr
    [run] = run_folders(workdir)
    assert run.parent.name == "ppo-cartpole"
    summary = json.loads((run / "summary.json").read_text())
    for key in (
        "eval_return_mean",
        "eval_return_std",
        "env_steps",
        "wall_time_s",
        "sps",
        "algo",
        "env",
        "seed",
        "best_eval_return_mean",
    ):
        assert key in summary
    assert summary["algo"] == "ppo" and summary["env"] == "CartPole-v1" and summary["env_steps"] >= 256
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    events = EventAccumulator(str(run))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in (
        "charts/episodic_return",
        "charts/episodic_length",
        "eval/return_mean",
        "eval/return_std",
        "perf/sps",
        "losses/policy",
        "losses/value",
    ):
        assert tag in scalars, tag
    assert "config/text_summary" in events.Tags()["tensors"]
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert len(list(run.glob("events.out.tfevents.*"))) == 1, "hparams must not open a timestamped sub-run"
    assert "summary.json" in result.stdout and "tensorboard --logdir" in result.stdout


def test_two_runs_in_the_same_second_get_their_own_folders(workdir):
    results = [run_cli(*TINY, cwd=workdir) for _ in range(2)]
    assert all(r.returncode == 0 for r in results)
    assert len(run_folders(workdir)) == 2


def test_algorithm_that_does_not_fit_the_env_fails_fast_with_one_sentence(workdir):
    start = time.time()
    result = run_cli("algo=sac", "env=cartpole", cwd=workdir)
    assert result.returncode != 0
    assert time.time() - start < 30
    [line] = result.stderr.strip().splitlines()
    assert "algo=sac needs a Box action space" in line and "Discrete(2)" in line and "dqn, ppo" in line
    assert "Traceback" not in result.stderr
    assert not list(workdir.glob("outputs/*")), "a failed command must not leave a run folder"


def test_a_failed_run_in_a_folder_of_the_users_removes_only_what_it_wrote(workdir):
    # hydra.run.dir names a folder the user may own: its own files, the folder and the one above it stay
    project = workdir / "project"
    project.mkdir()
    (project / "notes.log").write_text("mine")
    for run_dir in ("project/run", "project"):
        result = run_cli("algo=sac", "env=cartpole", f"hydra.run.dir={run_dir}", cwd=workdir)
        assert result.returncode != 0 and "algo=sac needs a Box action space" in result.stderr
    # in project/run nothing but Hydra's records, so they went; in project, beside notes.log, they stay
    assert sorted(p.name for p in project.iterdir()) == [".hydra", "notes.log", "rltrain.log", "run"]
    assert not any((project / "run").iterdir()) and (project / "notes.log").read_text() == "mine"


@pytest.mark.parametrize(
    "overrides, sentence",
    [
        (["algo=nosuchalgo"], f"algo=nosuchalgo is not an option of algo; the choices are {', '.join(ALGOS)}."),
        (["algo=sacc"], "algo=sacc is not an option of algo (did you mean algo=sac?); the choices are a2c,"),
        (["algo.learnign_rate=0.1"], "algo.learnign_rate is not a key of the config; did you mean algo.lr?"),
        (["-m", "seed=0,1", "eval.evry=5"], "eval.evry is not a key of the config; did you mean eval.every?"),
        (["+algo.learnign_rate=0.1"], "algo=ppo has no hyperparameter learnign_rate (did you mean algo.lr?)"),
        (["total_steps=abc"], "total_steps=abc must be a whole number (like 100000)."),
        (["network.hidden=64"], "network.hidden=64 must be a list (like [64, 64])."),
        (
            ["env.kwargs.max_episode_steps=50"],
            "env.kwargs.max_episode_steps is a new key of env.kwargs, which takes new keys with a +: "
            "+env.kwargs.max_episode_steps=50.",
        ),
    ],
)
def test_config_errors_are_one_sentence(overrides, sentence, workdir):
    result = run_cli(*overrides, cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"rltrain: error: {result.stderr.split(': ', 2)[2].strip()}"]
    assert sentence in result.stderr
    assert not list(workdir.glob("outputs/*/*")), "a refused command must not leave a run folder"


def test_hydra_full_error_still_shows_hydras_report(workdir):
    result = run_cli("algo=nosuchalgo", cwd=workdir, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "Could not find 'algo/nosuchalgo'" in result.stderr


def test_unregistered_env_id_is_one_sentence_with_a_suggestion(workdir):
    result = run_cli("env=gym", "env.id=CartPole-v9", cwd=workdir)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "env.id=CartPole-v9 is not a registered gymnasium environment" in line and "CartPole-v1" in line


def test_gym_env_without_an_id_says_how_to_set_it(workdir):
    result = run_cli("env=gym", cwd=workdir)
    assert result.returncode != 0 and "env.id has no value" in result.stderr


def test_cuda_without_a_gpu_is_a_clear_error(workdir):
    if torch.cuda.is_available():
        return
    result = run_cli("device=cuda", *TINY, cwd=workdir)
    assert result.returncode != 0 and "device=cuda" in result.stderr and "device=cpu" in result.stderr


def test_multirun_over_seeds(workdir):
    result = run_cli("-m", "seed=0,1", *TINY, cwd=workdir)
    assert result.returncode == 0, result.stderr
    summaries = sorted(workdir.glob("outputs/multirun/*/*/summary.json"))
    assert [json.loads(p.read_text())["seed"] for p in summaries] == [0, 1]
    assert [p.parent.name for p in summaries] == ["0", "1"]


def test_eval_cli_prints_mean_and_std_and_writes_a_video(workdir):
    assert run_cli(*TINY, "hydra.run.dir=run", cwd=workdir).returncode == 0
    result = run_cli("run=run", "episodes=3", "video=true", script="rltrain-eval", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "over 3 episodes" in result.stdout and "±" in result.stdout
    [video] = (workdir / "run" / "videos").glob("*.mp4")
    assert video.stat().st_size > 1000


def test_eval_cli_replays_a_planner_the_same_way_twice(workdir):
    """MPC samples while it plans, even without exploration: rltrain-eval seeds torch as well as the env."""
    mpc = ["algo=mpc", "env=pendulum", "total_steps=200", "eval.episodes=1", "algo.learning_starts=100"]
    small = ["algo.train_every=100", "algo.max_epochs=2", "algo.population=20", "algo.horizon=5"]
    assert run_cli(*mpc, *small, "hydra.run.dir=run", "log.progress=false", cwd=workdir).returncode == 0
    first, second = (run_cli("run=run", "episodes=2", script="rltrain-eval", cwd=workdir) for _ in range(2))
    assert first.returncode == 0 and "over 2 episodes" in first.stdout, first.stderr
    assert first.stdout == second.stdout


def test_video_of_a_mujoco_env_renders_without_a_display(workdir):
    pytest.importorskip("mujoco")
    egl = "from mujoco.egl import GLContext; GLContext(8, 8).make_current()"
    works = subprocess.run([sys.executable, "-c", egl], env={**os.environ, "MUJOCO_GL": "egl"}, capture_output=True)
    if ctypes.util.find_library("EGL") is None or works.returncode != 0:
        pytest.skip("no working EGL on this machine (apt install libegl1 libgl1-mesa-dri)")
    sac = ["algo=sac", "env=gym", "env.id=InvertedPendulum-v5", "total_steps=100", "algo.learning_starts=50"]
    assert run_cli(*sac, "eval.episodes=1", "hydra.run.dir=run", "log.progress=false", cwd=workdir).returncode == 0
    headless = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "MUJOCO_GL": ""}
    result = run_cli("run=run", "episodes=1", "video=true", script="rltrain-eval", cwd=workdir, env=headless)
    assert result.returncode == 0, result.stderr
    [video] = (workdir / "run" / "videos").glob("*.mp4")
    assert video.stat().st_size > 1000


def test_a_mujoco_backend_that_cannot_load_is_one_sentence(workdir):
    """MuJoCo picks its OpenGL backend from MUJOCO_GL when imported, so a bad one fails training, not only video."""
    pytest.importorskip("mujoco")
    result = run_cli("algo=sac", "env=hopper", "total_steps=100", cwd=workdir, env={"MUJOCO_GL": "bogus"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "could not load MuJoCo with MUJOCO_GL=bogus" in result.stderr and "or unset it" in result.stderr


def test_eval_cli_names_a_renderer_that_fails(workdir, monkeypatch, capsys):
    """A renderer that cannot start (injected) is one sentence with the fix, after the returns are printed."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    from rltrain.errors import RltrainError
    from rltrain.evaluate import run

    assert run_cli(*TINY, "hydra.run.dir=run", cwd=workdir).returncode == 0

    def no_renderer(self):
        raise ImportError("pygame is not installed")

    monkeypatch.setattr(CartPoleEnv, "render", no_renderer)
    with pytest.raises(
        RltrainError, match=r"^video=true could not render CartPole-v1: pygame is not installed\. .*video=false"
    ):
        run([f"run={workdir / 'run'}", "episodes=1", "video=true"])
    assert "over 1 episode\n" in capsys.readouterr().out  # one episode, not "1 episodes"


def test_eval_cli_errors_for_missing_and_corrupt_checkpoints(workdir):
    result = run_cli("run=nowhere", script="rltrain-eval", cwd=workdir)
    assert result.returncode != 0 and "No checkpoint at nowhere" in result.stderr
    bad = workdir / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    result = run_cli("run=bad.pt", script="rltrain-eval", cwd=workdir)
    assert result.returncode != 0 and "corrupt" in result.stderr and "Traceback" not in result.stderr
    assert bad.read_bytes() == b"\x00garbage"


def test_resume_of_a_folder_without_checkpoint_is_a_clear_error(workdir):
    (workdir / "empty").mkdir()
    result = run_cli("resume=empty", cwd=workdir)
    assert result.returncode != 0 and "No checkpoint at" in result.stderr


@pytest.mark.parametrize(
    "module, program", [("rltrain.evaluate", "rltrain-eval"), ("rltrain.collect", "rltrain-collect")]
)
def test_key_value_scripts_name_an_unknown_argument(module, program, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["episods=3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{program}: error: 'episods=3' is not an option of {program}.")
