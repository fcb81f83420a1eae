"""Expert demonstrations that need no trained checkpoint, shared by the imitation tests and bench/imitation.py: a
hand-written Pendulum controller, and the recording of any such policy as a Minari dataset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rltrain import datasets


class SwingUp:
    """A hand-written Pendulum expert (mean return about -140): pump energy towards the upright state's, then
    hold it with a PD controller. With theta'' = 15 sin(theta) + 3u, E = theta'^2 / 2 + 15 cos(theta) changes as
    dE/dt = 3 u theta', and upright at rest has E = 15."""

    def act(self, obs, explore: bool = False) -> np.ndarray:
        actions = []
        for cos, sin, speed in np.asarray(obs, dtype=np.float64):
            angle, energy = np.arctan2(sin, cos), 0.5 * speed**2 + 15 * cos
            if cos > 0.85:
                torque = -(12 * angle + 2.5 * speed)
            else:
                torque = 2.0 * np.sign(speed * (15 - energy)) if abs(speed) > 1e-3 else 2.0
            actions.append([torque])
        return np.clip(np.asarray(actions, dtype=np.float32), -2, 2)


def record(policy, dataset_id: str, env_id: str, episodes: int, ref_max: float | None, ref_episodes: int = 10) -> None:
    """What rltrain-collect does, for a policy that is not a checkpoint (ref_max=None: the policy's mean return
    over `ref_episodes` evaluation episodes)."""
    from rltrain.collect import mean_return

    env = gym.make(env_id)
    buffers = datasets.record_policy(policy, env, episodes, None, seed=0)
    env_cfg, cpu = {"id": env_id, "kwargs": {}}, torch.device("cpu")
    ref_min = mean_return(datasets.RandomPolicy(env.action_space, 0), env_cfg, ref_episodes, 10_000, cpu)
    if ref_max is None:
        ref_max = mean_return(policy, env_cfg, ref_episodes, 10_000, cpu)
    spaces = (env.observation_space, env.action_space)
    datasets.write(dataset_id, buffers, env.spec, *spaces, type(policy).__name__, env_id, ref_min, ref_max, False)
    env.close()


# the imitation tests' expert datasets: id -> (env, episodes, expert); "ppo" is the PPO CartPole preset, seed 0
IMITATION_EXPERTS = {
    "test/cartpole/expert-v0": ("CartPole-v1", 20, "ppo"),
    "test/cartpole/expert10-v0": ("CartPole-v1", 10, "ppo"),
    "test/pendulum/expert-v0": ("Pendulum-v1", 50, "swing-up"),
}


def record_imitation_experts(work) -> None:
    """Record IMITATION_EXPERTS into the Minari root MINARI_DATASETS_PATH names (training the CartPole expert, about
    15 s, in `work`). The demonstrations depend on the CPU's kernel path through the PPO expert's training."""
    from rltrain.cli import compose_plain
    from rltrain.collect import main as collect
    from rltrain.trainer import Trainer

    run = work / "ppo-cartpole"
    summary = Trainer(compose_plain(["algo=ppo", "env=cartpole", "seed=0", "log.progress=false"]), run).run()
    assert summary["eval_return_mean"] >= 475.0, f"the CartPole expert ended at {summary['eval_return_mean']}"
    for dataset_id, (env_id, episodes, expert) in IMITATION_EXPERTS.items():
        if expert == "ppo":
            collect([f"run={run}", f"id={dataset_id}", f"episodes={episodes}", "ref_episodes=10"])
        else:
            record(SwingUp(), dataset_id, env_id, episodes, ref_max=-140.0)
