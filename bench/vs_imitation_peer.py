"""The HumanCompatibleAI `imitation` side of bench/vs_imitation.py, run by the python of its own venv (imitation 1.0
pins gymnasium 0.29 and stable-baselines3 2.2, which rltrain's environment cannot have): it imports neither rltrain
nor minari.

Reads the expert episodes from the .npz that bench/vs_imitation.py wrote from the Minari dataset, trains imitation's BC
or GAIL with the settings bench/vs_imitation.py hands over (--settings, JSON), evaluates the policy with deterministic
actions on the same env seeds as rltrain's evaluation, and writes a JSON result to --out.

    python bench/vs_imitation_peer.py --algo bc|gail --data <npz> --seed 0 --settings '{...}' --out result.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from versus import peer_args  # the benches' shared module needs only the standard library

os.environ.setdefault("OMP_NUM_THREADS", "1")


def trajectories(data_path: Path) -> list:
    """imitation Trajectories: each episode's N + 1 observations and N actions; terminal = terminated (an episode
    cut by the time limit is not terminal)."""
    import numpy as np
    from imitation.data.types import Trajectory

    data = np.load(data_path)
    episodes, obs_start, act_start = [], 0, 0
    for length, terminated in zip(data["episode_lengths"], data["terminated"]):
        length = int(length)
        episodes.append(
            Trajectory(
                obs=data["observations"][obs_start : obs_start + length + 1],
                acts=data["actions"][act_start : act_start + length],
                infos=None,
                terminal=bool(terminated),
            )
        )
        obs_start += length + 1
        act_start += length
    return episodes


def evaluate(policy, env_id: str, episodes: int, first_seed: int) -> list[float]:
    """Returns of deterministic episodes; episode i starts from reset(seed=first_seed + i), as rltrain's eval."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=first_seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = policy.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def actor_critic_kwargs(settings: dict) -> dict:
    """SB3 policy_kwargs for separate policy and value MLPs of rltrain's sizes and activation."""
    from torch import nn

    activation = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}[settings["activation"]]
    hidden = list(settings["hidden"])
    return {"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": activation}


def train_bc(demonstrations: list, env, settings: dict, rng):
    """imitation's BC: `updates` Adam steps on batches of `batch_size` expert pairs, loss -log pi(a|s) (a Gaussian
    with a state-independent std for Box actions, as imitation has it) plus ent_weight times the entropy."""
    import torch
    from imitation.algorithms import bc
    from stable_baselines3.common.policies import ActorCriticPolicy

    lr = settings["lr"]
    policy = ActorCriticPolicy(
        env.observation_space, env.action_space, lr_schedule=lambda _: lr, **actor_critic_kwargs(settings)
    )
    trainer = bc.BC(
        observation_space=env.observation_space,
        action_space=env.action_space,
        rng=rng,
        policy=policy,
        demonstrations=demonstrations,
        batch_size=settings["batch_size"],
        optimizer_cls=torch.optim.Adam,
        optimizer_kwargs={"lr": lr},
        ent_weight=settings["ent_weight"],
        l2_weight=0.0,
        device="cpu",
    )
    trainer.train(n_batches=settings["updates"], progress_bar=False, log_interval=10**9)
    return trainer.policy, settings["updates"]


def train_gail(demonstrations: list, env_id: str, seed: int, settings: dict):
    """imitation's GAIL: SB3 PPO with rltrain's PPO preset settings, and a BasicRewardNet discriminator; one round =
    one PPO rollout of n_envs * n_steps env steps and its update, then `disc_steps` discriminator steps on
    `disc_batch_size` expert and as many learner pairs of that rollout."""
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    ppo = settings["ppo"]
    unsupported = [key for key in ("normalize_obs", "normalize_reward") if ppo[key]]
    if unsupported:
        raise SystemExit(f"the bench does not map algo.ppo.{', '.join(unsupported)} onto SB3's PPO yet.")
    total_steps = settings["total_steps"]
    venv = make_vec_env(env_id, n_envs=settings["num_envs"], seed=seed)
    learner_box = []  # the PPO object, for the learning-rate schedule below

    def annealed(key: str):
        # imitation calls PPO.learn once per round, so SB3's progress_remaining restarts every round; anneal over
        # the whole run's env steps instead, as rltrain's anneal_lr and anneal_clip do
        def schedule(_progress_remaining: float) -> float:
            if not ppo[f"anneal_{key}"] or not learner_box:
                return ppo[key]
            return ppo[key] * max(0.0, 1.0 - learner_box[0].num_timesteps / total_steps)

        return schedule

    rollout = settings["num_envs"] * ppo["rollout_steps"]
    learner = PPO(
        "MlpPolicy",
        venv,
        learning_rate=annealed("lr"),
        n_steps=ppo["rollout_steps"],
        batch_size=rollout // ppo["minibatches"],
        n_epochs=ppo["epochs"],
        gamma=ppo["gamma"],
        gae_lambda=ppo["gae_lambda"],
        clip_range=annealed("clip"),
        clip_range_vf=ppo["clip_value"],
        ent_coef=ppo["entropy_coef"],
        vf_coef=ppo["value_coef"],
        max_grad_norm=ppo["max_grad_norm"],
        normalize_advantage=ppo["normalize_advantages"],
        policy_kwargs=actor_critic_kwargs(settings),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    learner_box.append(learner)
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[settings["activation"]]
    discriminator = BasicRewardNet(
        venv.observation_space,
        venv.action_space,
        normalize_input_layer=RunningNorm,
        hid_sizes=tuple(settings["hidden"]),
        activation=activation,
    )
    trainer = GAIL(
        demonstrations=demonstrations,
        demo_batch_size=settings["disc_batch_size"],
        gen_replay_buffer_capacity=rollout,  # the discriminator sees the latest rollout only, as rltrain's
        n_disc_updates_per_round=settings["disc_steps"],
        venv=venv,
        gen_algo=learner,
        reward_net=discriminator,
        disc_opt_kwargs={"lr": settings["disc_lr"]},
        allow_variable_horizon=True,  # CartPole's episodes end when the pole falls
    )
    trainer.train(total_timesteps=total_steps)
    return learner.policy, int(learner.num_timesteps)


def main() -> None:
    args, settings = peer_args(__doc__.splitlines()[0], "budgets and hyperparameters", algos=["bc", "gail"])

    import gymnasium as gym
    import imitation
    import numpy as np
    import torch
    from stable_baselines3.common.utils import set_random_seed

    torch.set_num_threads(1)
    set_random_seed(args.seed)
    env_id = str(np.load(args.data)["env_id"])
    demonstrations = trajectories(args.data)
    started = time.perf_counter()
    if args.algo == "bc":
        env = gym.make(env_id)
        policy, steps = train_bc(demonstrations, env, settings, np.random.default_rng(args.seed))
        env.close()
    else:
        policy, steps = train_gail(demonstrations, env_id, args.seed, settings)
    trained = time.perf_counter()
    returns = evaluate(policy, env_id, settings["eval_episodes"], settings["eval_seed"])
    finished = time.perf_counter()
    args.out.write_text(
        json.dumps(
            {
                "library": f"imitation {imitation.__version__}",
                "steps": steps,
                "train_s": trained - started,
                "run_s": finished - started,
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
            }
        )
    )


if __name__ == "__main__":
    main()
