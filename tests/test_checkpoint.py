"""Checkpoints: atomic, loadable with weights_only, a full round trip, clear errors; resume continues the curve."""

import json
import os
import re
import signal
import subprocess
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import BIN, compose_config, run_cli, tiny
from rltrain import checkpoint
from rltrain.errors import RltrainError
from rltrain.trainer import Trainer


def scalar_steps(run_dir, tag):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def test_atomic_save_leaves_no_temporary_file_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save({"agent": {"w": torch.ones(3)}, "config": {"seed": 1}}, path)
    checkpoint.save({"agent": {"w": torch.zeros(3)}, "config": {"seed": 2}}, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["seed"] == 2 and payload["agent"]["w"].sum() == 0


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save({"agent": {}, "config": {"v": 1}}, path)
    with pytest.raises(Exception):
        checkpoint.save({"agent": {}, "config": {"v": lambda: 0}}, path)  # unpicklable: the save fails midway
    assert torch.load(path, weights_only=True)["config"]["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_and_corrupt_checkpoints_are_one_clear_error(tmp_path):
    with pytest.raises(RltrainError, match="No checkpoint at"):
        checkpoint.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RltrainError, match="corrupt"):
        checkpoint.load(bad)
    assert bad.read_bytes() == b"not a checkpoint"


@pytest.mark.parametrize(
    "algo,env",
    [
        ("ppo", "pendulum"),
        ("a2c", "cartpole"),
        ("trpo", "pendulum"),
        ("reinforce", "cartpole"),
        ("dqn", "cartpole"),
        ("sac", "pendulum"),
        ("sac", "mountaincar_continuous"),  # gSDE
        ("td3", "pendulum"),
        ("mpc", "pendulum"),
    ],
)
def test_round_trip_restores_networks_optimizers_counters_and_rng(algo, env, tmp_path):
    config = tiny(compose_config(f"algo={algo}", f"env={env}"), total_steps=200)
    config["checkpoint"]["replay_buffer"] = True
    trainer = Trainer(config, tmp_path / "a")
    trainer.run()
    payload = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")
    restored = Trainer(payload["config"], tmp_path / "b", resume=payload)
    original_state, restored_state = trainer.agent.state_dict(), restored.agent.state_dict()
    for key, value in original_state.items():
        if isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
            for name, tensor in value.items():
                torch.testing.assert_close(restored_state[key][name], tensor)
        elif isinstance(value, int):
            assert restored_state[key] == value
    assert restored.step == trainer.step
    if restored.replay is not None:
        assert restored.replay.size == trainer.replay.size
    restored.close()


def test_resume_continues_the_same_curve_without_logging_a_step_twice(workdir):
    common = ["algo=dqn", "env=cartpole", "eval.every=500", "eval.episodes=2", "log.every=250", "checkpoint.every=1000"]
    first = run_cli(*common, "total_steps=1500", "hydra.run.dir=run", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert json.loads((workdir / "run" / "summary.json").read_text())["env_steps"] == 1500
    second = run_cli("resume=run", "total_steps=3000", cwd=workdir)
    assert second.returncode == 0, second.stderr
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["env_steps"] == 3000
    for tag in ("eval/return_mean", "losses/td", "perf/sps"):
        steps = scalar_steps(workdir / "run", tag)
        assert steps == sorted(set(steps)), f"{tag} logged a step twice or out of order: {steps}"
        assert steps[-1] == 3000
    assert scalar_steps(workdir / "run", "eval/return_mean") == [500, 1000, 1500, 2000, 2500, 3000]
    # the resumed run kept the folder's own Hydra record
    assert "total_steps=1500" in (workdir / "run" / ".hydra" / "overrides.yaml").read_text()


def test_resume_rejects_overrides_that_would_silently_not_apply(workdir):
    first = run_cli("total_steps=64", "eval.episodes=1", "hydra.run.dir=run", cwd=workdir)
    assert first.returncode == 0, first.stderr
    result = run_cli("resume=run", "algo.lr=0.1", cwd=workdir)
    assert result.returncode != 0 and "algo.lr=0.1 cannot apply" in result.stderr


def start_training(workdir, *overrides):
    return subprocess.Popen(
        [str(BIN / "rltrain"), *overrides, "hydra.run.dir=run"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, process, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_stop_signals_write_a_checkpoint_and_exit_as_interrupted(stop, workdir):
    process = start_training(workdir, "total_steps=10000000", "eval.every=0", "checkpoint.every=2048")
    wait_for(workdir / "run" / "checkpoints" / "last.pt", process)
    process.send_signal(stop)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + stop, err
    assert "Traceback" not in err and "Continue with rltrain resume=" in out
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    payload = checkpoint.load(workdir / "run" / "checkpoints" / "last.pt")
    assert summary["interrupted"] and payload["step"] == summary["env_steps"] > 2048
    assert summary["stopped_by"] == signal.Signals(stop).name


def test_resume_auto_starts_continues_skips_and_refuses_another_config(workdir):
    command = ["resume=auto", "hydra.run.dir=run", "eval.every=0", "eval.episodes=2", "log.every=256"]
    process = start_training(workdir, *command, "checkpoint.every=2048", "total_steps=10000000")
    wait_for(workdir / "run" / "checkpoints" / "last.pt", process)
    process.send_signal(signal.SIGUSR1)  # SLURM's signal ahead of a time limit (sbatch --signal=USR1@60)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGUSR1 and "Continue with the same command." in out
    stopped_at = checkpoint.load(workdir / "run" / "checkpoints" / "last.pt")["step"]
    # re-submitted as it was, the run continues; the step budget may be changed
    again = run_cli(*command, "checkpoint.every=2048", f"total_steps={stopped_at + 1024}", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert f"Continuing {workdir / 'run'} from step {stopped_at}" in again.stdout
    steps = scalar_steps(workdir / "run", "perf/sps")
    assert steps == list(range(256, stopped_at + 1024 + 1, 256)), "a step logged twice or missing"
    events = sorted((workdir / "run").glob("events.out.tfevents.*"))
    finished = run_cli(*command, "checkpoint.every=2048", f"total_steps={stopped_at + 1024}", cwd=workdir)
    assert finished.returncode == 0 and "already finished" in finished.stdout
    assert sorted((workdir / "run").glob("events.out.tfevents.*")) == events
    changed = run_cli(*command, "checkpoint.every=4096", cwd=workdir)
    assert changed.returncode == 2 and "holds a run of another config (checkpoint.every=4096 here" in changed.stderr
    fresh = run_cli("hydra.run.dir=run", cwd=workdir)
    assert fresh.returncode == 2 and "already holds a run; continue it with resume=auto" in fresh.stderr
    assert "total_steps=10000000" in (workdir / "run" / ".hydra" / "overrides.yaml").read_text()


def test_killed_run_resumes_from_its_last_checkpoint(workdir):
    process = start_training(workdir, "total_steps=10000000", "eval.every=0", "checkpoint.every=4096", "log.every=256")
    wait_for(workdir / "run" / "checkpoints" / "last.pt", process)
    time.sleep(1.0)  # let it log past the checkpoint before it dies
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    saved_step = checkpoint.load(workdir / "run" / "checkpoints" / "last.pt")["step"]
    result = run_cli("resume=run", f"total_steps={saved_step + 2048}", cwd=workdir)
    assert result.returncode == 0, result.stderr
    steps = scalar_steps(workdir / "run", "perf/sps")
    assert steps == sorted(set(steps)) and steps[-1] == saved_step + 2048


def test_a_diverged_loss_stops_the_run_with_one_sentence(tmp_path):
    trainer = Trainer(tiny(compose_config("algo=dqn", "env=cartpole")), tmp_path)
    with pytest.raises(RltrainError, match=r"training diverged at step 0: td became nan; lower the learning rate"):
        trainer.check_finite({"td": torch.tensor(float("nan")), "q_mean": 1.0})
    trainer.close()


def save_with_config(path, config):
    checkpoint.save({"agent": {}, "config": config, "step": 0}, path)


@pytest.mark.parametrize(
    "script, args, target",
    [("rltrain-eval", ["run=run"], "rltrain_canary.Probe"), ("rltrain", ["resume=run"], "subprocess.Popen")],
)
def test_a_checkpoint_naming_a_foreign_class_is_refused_before_anything_is_imported(script, args, target, workdir):
    marker = workdir / "imported-or-called"
    # importing the canary module, or calling Popen with these arguments, would create the marker file
    (workdir / "rltrain_canary.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Probe: ...\n")
    config = compose_config()
    config["algo"].update({"_target_": target, "args": ["touch", str(marker)]})
    save_with_config(workdir / "run" / "checkpoints" / "last.pt", config)
    python_path = os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")]))
    result = run_cli(*args, script=script, cwd=workdir, env={"PYTHONPATH": python_path})
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"names algo._target_={target}, which is not one of rltrain's algorithms" in line
    assert not marker.exists()


def test_a_command_line_naming_a_foreign_class_is_refused(workdir):
    result = run_cli("algo._target_=subprocess.Popen", "+algo.args=[touch,marker]", cwd=workdir)
    assert result.returncode == 2 and "not one of rltrain's algorithms" in result.stderr
    assert not (workdir / "marker").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: c.pop("network"), "has no network section"),
        (lambda c: c["algo"].pop("_target_"), "has no algo._target_"),
        (lambda c: c["network"].update(hidden=64), "network.hidden=64 must be a list"),
        (lambda c: c.update(total_steps="many"), "total_steps=many must be a whole number"),
        (lambda c: c["algo"].update(ppo={"_target_": "os.system"}), "algo.ppo._target_=os.system, which is not"),
    ],
)
def test_a_checkpoint_with_a_damaged_config_is_one_sentence(damage, message, tmp_path):
    config = compose_config()
    damage(config)
    save_with_config(tmp_path / "last.pt", config)
    with pytest.raises(RltrainError, match=f"^Checkpoint {tmp_path / 'last.pt'}.*{re.escape(message)}") as error:
        checkpoint.load(tmp_path / "last.pt")
    assert "\n" not in str(error.value)
