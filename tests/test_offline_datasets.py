"""The offline benchmark datasets (`make datasets`): what each one holds, their shared reference scores, and the
builder's own errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rltrain import datasets
from rltrain import offline_datasets as builder
from rltrain.errors import RltrainError


def test_unknown_recipe_and_bad_seed_are_one_sentence(capsys):
    with pytest.raises(RltrainError, match="no dataset recipe named hopper; pick from pendulum, cartpole"):
        builder.build(["hopper"])
    with pytest.raises(SystemExit) as exit_info:
        builder.main(["seed=abc"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "rltrain.offline_datasets: error: seed=abc must be a whole number."


def load(dataset_id: str) -> datasets.Dataset:
    import gymnasium as gym
    import torch

    env = gym.make(datasets.env_id_of(dataset_id))
    return datasets.load(dataset_id, env.observation_space, env.action_space, env.spec.id, torch.device("cpu"))


@pytest.mark.slow
def test_benchmark_datasets_hold_what_their_names_say(offline_datasets, monkeypatch, tmp_path):
    monkeypatch.setenv("MINARI_DATASETS_PATH", offline_datasets)
    pendulum = {i.split("/")[-1]: load(i) for i in builder.PENDULUM_IDS}
    refs = {(d.ref_min_score, d.ref_max_score) for d in pendulum.values()}
    assert len(refs) == 1  # one normalization for every Pendulum dataset
    ((ref_min, ref_max),) = refs
    assert -1400 < ref_min < -1000 and ref_max > -250  # a random policy and an expert

    def score(name: str) -> float:
        return pendulum[name].normalized_score(float(pendulum[name].episode_returns.mean()))

    assert score("random-v0") < 10 < score("medium-v0") < 90 < score("expert-v0") + 10
    assert (
        pendulum["medium-expert-v0"].num_episodes
        == pendulum["medium-v0"].num_episodes + pendulum["expert-v0"].num_episodes
    )
    # the medium run's replay: every transition it stored, Pendulum's time limit truncating, nothing terminating
    replay = pendulum["medium-replay-v0"]
    assert replay.terminated.sum() == 0 and replay.num_episodes >= 10

    cartpole = load("rltrain/cartpole/replay-v0")
    assert len(cartpole) == 50000 and cartpole.ref_max_score == 500
    assert cartpole.terminated.sum() > 50  # epsilon 0.3 makes the pole fall often

    # a second build finds them all and rebuilds nothing
    result = subprocess.run(
        [sys.executable, "-m", "rltrain.offline_datasets", f"runs={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "already exist" in result.stdout and not any(tmp_path.iterdir())
