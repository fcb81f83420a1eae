"""device=cpu|cuda|auto. The CUDA tests run where a GPU is present and skip cleanly elsewhere."""

import pytest
import torch

from conftest import compose_config, tiny
from rltrain.agent import resolve_device
from rltrain.errors import RltrainError
from rltrain.trainer import Trainer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_auto_keeps_small_networks_on_the_cpu():
    assert resolve_device("auto", [64, 64]).type == "cpu"
    assert resolve_device("cpu", [1024]).type == "cpu"


def test_auto_uses_cuda_for_wide_networks_only_when_there_is_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", [256, 256]).type == expected


def test_unknown_device_is_named():
    with pytest.raises(RltrainError, match="device=tpu"):
        resolve_device("tpu", [64])


@needs_cuda
@pytest.mark.parametrize(
    "algo,env,extra",
    [
        ("ppo", "cartpole", ()),
        ("ppo", "pendulum", ()),
        ("a2c", "cartpole", ()),
        ("trpo", "pendulum", ()),
        ("reinforce", "cartpole", ()),
        ("dqn", "cartpole", ("algo.dueling=true", "algo.double=true")),
        ("dqn", "pendulum", ("env.discretize=11",)),
        ("c51", "cartpole", ()),
        ("sac", "pendulum", ()),
        ("td3", "pendulum", ()),
    ],
)
def test_training_runs_on_cuda(algo, env, extra, tmp_path):
    config = tiny(compose_config(f"algo={algo}", f"env={env}", "device=cuda", *extra), total_steps=512)
    config["checkpoint"]["replay_buffer"] = True
    trainer = Trainer(config, tmp_path)
    summary = trainer.run()
    assert summary["device"] == "cuda" and summary["env_steps"] >= 512
    holders = [trainer.agent, getattr(trainer.agent, "policy", None)]  # on-policy agents keep theirs in .policy
    networks = [m for h in holders if h is not None for m in vars(h).values() if isinstance(m, torch.nn.Module)]
    assert networks and all(p.is_cuda for m in networks for p in m.parameters())
    if trainer.replay is not None:
        assert trainer.replay.obs.is_cuda


@needs_cuda
def test_cuda_checkpoint_evaluates_on_the_cpu(tmp_path):
    from rltrain.evaluate import run

    config = tiny(compose_config("algo=sac", "env=pendulum", "device=cuda"), total_steps=256)
    Trainer(config, tmp_path).run()
    result = run([f"run={tmp_path}", "episodes=2", "device=cpu"])
    assert result["episodes"] == 2


@needs_cuda
@pytest.mark.parametrize(
    "algo,dataset",
    [
        ("bc", "test/pendulum/random-v0"),
        ("gail", "test/pendulum/random-v0"),
        ("cql", "test/pendulum/random-v0"),
        ("cql", "test/cartpole/random-v0"),
        ("iql", "test/pendulum/random-v0"),
        ("awr", "test/pendulum/random-v0"),
        ("edac", "test/pendulum/random-v0"),
        ("sac_n", "test/pendulum/random-v0"),
        ("mpc", None),
    ],
)
def test_dataset_and_model_based_training_runs_on_cuda(algo, dataset, tiny_datasets, tmp_path):
    env = "cartpole" if dataset and "cartpole" in dataset else "pendulum"
    overrides = [f"algo={algo}", f"env={env}", "device=cuda"] + ([f"dataset={dataset}"] if dataset else [])
    config = tiny(compose_config(*overrides), total_steps=128)
    if "batch_size" in config["algo"]:
        config["algo"]["batch_size"] = 32
    trainer = Trainer(config, tmp_path / "run")
    summary = trainer.run()
    assert summary["device"] == "cuda" and summary["env_steps"] >= 128
    networks = [m for m in vars(trainer.agent).values() if isinstance(m, torch.nn.Module)]
    assert networks and all(p.is_cuda for m in networks for p in m.parameters())
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
