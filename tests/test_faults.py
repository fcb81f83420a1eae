"""Faults injected into runs, then checked that nothing was lost: a full disk while a checkpoint is written, an env
that raises or returns NaN, a damaged replay buffer, and runs killed (SIGKILL) at random points and while writing a
checkpoint, then continued."""

import errno
import multiprocessing
import os
import random
import signal
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import BIN, compose_config, tiny
from rltrain import checkpoint, cli
from rltrain.errors import RltrainError
from rltrain.trainer import Trainer


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    config = tiny(compose_config(), total_steps=512)
    config["checkpoint"]["every"] = 128
    trainer = Trainer(config, tmp_path)
    real_save, calls = torch.save, []

    def save_until_the_disk_is_full(payload, f):
        calls.append(payload["step"])
        if len(calls) == 1:
            return real_save(payload, f)
        f.write(b"the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_is_full)
    with pytest.raises(RltrainError) as error:
        trainer.run()
    message = str(error.value)
    assert "\n" not in message and "No space left on device" in message and "before is intact" in message
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["step"] == calls[0] == 128
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"]


def test_a_file_size_limit_while_resuming_exits_2_with_the_previous_checkpoint_intact(workdir):
    Trainer(tiny(compose_config(), total_steps=256), workdir / "run").run()
    before = (workdir / "run" / "checkpoints" / "last.pt").read_bytes()
    # the OS refuses to write files over 32 KiB (EFBIG); the checkpoint is larger, the curves and logs are not
    command = f"trap '' XFSZ; ulimit -f 32; exec {BIN / 'rltrain'} resume=run total_steps=512"
    result = subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rltrain: error: Could not write checkpoint") and "File too large" in line
    assert (workdir / "run" / "checkpoints" / "last.pt").read_bytes() == before


class FaultyEnv(gym.Env):
    """CartPole-like spaces; at step `at` of an instance it raises, or returns NaN in its observation or reward.
    Its episodes are truncated every 20 steps, so a NaN observation at step 40 is an episode's final one."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, fault: str = "raise", at: int = 40):
        self.fault, self.at, self.steps = fault, at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.steps += 1
        obs, reward = np.zeros(4, np.float32), 1.0
        if self.steps == self.at:
            if self.fault == "raise":
                raise RuntimeError("the simulator lost its connection")
            if self.fault == "nan_obs":
                obs[2] = np.nan
            else:
                reward = float("nan")
        return obs, reward, False, self.steps % 20 == 0, {}


gym.register("rltrain-test/Faulty-v0", entry_point=FaultyEnv)


@pytest.mark.parametrize(
    "fault, sentence",
    [
        ("raise", "raised RuntimeError (the simulator lost its connection) in step() at env step 312"),
        ("nan_obs", "returned a non-finite observation at env step 312 (observation[0, 2] = nan)"),
        ("nan_reward", "returned a non-finite reward at env step 312 (reward[0] = nan)"),
    ],
)
def test_a_faulty_env_stops_the_run_with_one_sentence_and_keeps_the_last_checkpoint(fault, sentence, tmp_path):
    config = tiny(compose_config("env=gym", "env.id=rltrain-test/Faulty-v0"), total_steps=1024)
    config["env"]["kwargs"] = {"fault": fault}
    config["checkpoint"]["every"] = 128
    trainer = Trainer(config, tmp_path)  # 8 envs: each one's 40th step is env step 312
    with pytest.raises(RltrainError) as error:
        trainer.run()
    assert (
        str(error.value) == f"env rltrain-test/Faulty-v0 {sentence}; the run stopped and its last checkpoint is kept."
    )
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["step"] == 256


def test_a_damaged_replay_buffer_is_one_sentence_offering_best_or_an_empty_buffer(tmp_path):
    config = tiny(compose_config("algo=dqn"), total_steps=256)
    config["checkpoint"]["replay_buffer"] = True
    Trainer(config, tmp_path).run()
    payload = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    payload["replay"]["obs"] = payload["replay"]["obs"][:100]  # truncated
    with pytest.raises(RltrainError) as error:
        Trainer(config, tmp_path, resume=payload)
    assert str(error.value) == (
        f"The replay buffer in the checkpoint of {tmp_path} is damaged (its obs is (100, 4) torch.float32 where "
        f"(256, 4) torch.float32 belongs); continue from the best checkpoint, which has none (rltrain "
        f"resume={tmp_path}/checkpoints/best.pt), or from this one with an empty buffer that refills (rltrain "
        f"resume={tmp_path} checkpoint.replay_buffer=false)."
    )
    config["checkpoint"]["replay_buffer"] = False  # what the second offer does
    config["total_steps"] = 320
    resumed = Trainer(config, tmp_path, resume=payload)
    assert resumed.replay.size == 0 and resumed.run()["env_steps"] == 320


def train_until_killed(config: dict, run_dir: str, crash: str | None) -> None:
    """What `rltrain resume=auto` runs in its folder; `crash` kills it in the middle of writing a checkpoint
    ("writing": some bytes are in the temporary file; "renaming": all of them, before the rename)."""
    if crash == "writing":
        real_save = torch.save

        def save_part_then_die(payload, f):
            real_save(payload, f)
            f.truncate(f.tell() // 2)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        checkpoint.torch.save = save_part_then_die
    elif crash == "renaming":
        checkpoint.os.replace = lambda source, target: os.kill(os.getpid(), signal.SIGKILL)
    cli.continue_or_start(config, Path(run_dir), auto=True, continue_with="the same command")


@pytest.mark.slow
def test_a_run_killed_at_random_points_and_while_checkpointing_continues_without_a_gap(tmp_path):
    config = tiny(compose_config(), total_steps=10_000_000)
    config["checkpoint"]["every"] = 256
    config["log"]["every"] = 128
    # each run a fork of a process that has already imported what a run imports: a start costs milliseconds
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rltrain.cli", "rltrain.trainer", "torch._dynamo"])
    rng = random.Random(0)
    kills = []
    for attempt in range(12):
        crash = {4: "writing", 8: "renaming"}.get(attempt)
        process = context.Process(target=train_until_killed, args=(config, str(tmp_path), crash))
        process.start()
        process.join(timeout=120 if crash else rng.uniform(0.5, 2.5))
        if process.is_alive():
            process.kill()
            process.join()
        assert process.exitcode == -signal.SIGKILL, f"attempt {attempt} ended with {process.exitcode}"
        kills.append(crash or "random")
        if (tmp_path / "checkpoints" / "last.pt").exists():
            checkpoint.load(tmp_path / "checkpoints" / "last.pt")  # whatever the moment, the checkpoint loads
    saved = checkpoint.load(tmp_path / "checkpoints" / "last.pt")["step"]
    assert saved >= 256 * 3, "the killed runs must have made progress"
    config["total_steps"] = saved + 1024  # the last submission finishes
    process = context.Process(target=train_until_killed, args=(config, str(tmp_path), None))
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0 and len(kills) == 12
    final = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert final["step"] == saved + 1024
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    for tag, first in (("perf/sps", 128), ("losses/policy", 256)):  # the first update ends the first rollout
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == list(range(first, saved + 1024 + 1, 128)), f"{tag}: a step logged twice or missing"
