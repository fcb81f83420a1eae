"""The d3rlpy side of bench/vs_d3rlpy.py, run by the python of d3rlpy's own venv (d3rlpy 2.8 pins gymnasium 1.0,
which rltrain's environment cannot have): it imports neither rltrain nor minari.

Reads the dataset from the .npz that bench/vs_d3rlpy.py wrote from the Minari dataset (observations, actions, rewards,
terminals and timeouts apart, and the dataset's statistics rltrain standardizes with), builds d3rlpy's
MDPDataset(observations, actions, rewards, terminals, timeouts), trains the d3rlpy algorithm bench/vs_d3rlpy.py
mapped rltrain's preset onto (--settings, JSON: its config class and keyword arguments), evaluates the policy with
deterministic actions on the same env seeds as rltrain's evaluation, and writes a JSON result to --out.

The algorithm's networks and optimizers are built (build_with_dataset) before the clock starts, as rltrain's Trainer
builds its agent before its own; fit() then runs one epoch of all the updates, with nothing but the updates in it: no
evaluators, no progress bar, d3rlpy's NoopAdapterFactory as the logger (no files), and no model saved (save_interval
above the number of epochs).

    python bench/vs_d3rlpy_peer.py --data <npz> --seed 0 --settings '{...}' --out result.json
"""

from __future__ import annotations

import json
import os
import sys
import time

from versus import peer_args  # the benches' shared module needs only the standard library

os.environ.setdefault("OMP_NUM_THREADS", "1")


def mdp_dataset(data):
    """d3rlpy's MDPDataset of the flat arrays: an episode ends at a terminal (no bootstrap) or a timeout."""
    import numpy as np
    from d3rlpy.dataset import MDPDataset

    return MDPDataset(
        observations=np.asarray(data["observations"], dtype=np.float32),
        actions=np.asarray(data["actions"], dtype=np.float32),
        rewards=np.asarray(data["rewards"], dtype=np.float32),
        terminals=np.asarray(data["terminals"], dtype=np.float32),
        timeouts=np.asarray(data["timeouts"], dtype=np.float32),
    )


def algorithm_config(settings: dict, data):
    """The d3rlpy config of --settings: its class, plain keyword arguments, encoders of rltrain's sizes and
    activation, the scalers (observations standardized with the statistics rltrain uses, actions mapped from the
    env's box to [-1, 1], rewards multiplied by rltrain's IQL scale) and the actor's cosine learning-rate schedule."""
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory
    from d3rlpy.optimizers import AdamFactory, CosineAnnealingLRFactory
    from d3rlpy.preprocessing import MinMaxActionScaler, MultiplyRewardScaler, StandardObservationScaler

    kwargs = dict(settings["kwargs"])
    if settings["layer_norm_encoders"] and "use_layer_norm" not in VectorEncoderFactory.__dataclass_fields__:
        sys.exit(f"d3rlpy {d3rlpy.__version__} has no LayerNorm encoders; install d3rlpy 2.8 (make bench-d3rlpy does).")
    for name in settings["encoders"]:
        layer_norm = {"use_layer_norm": True} if name in settings["layer_norm_encoders"] else {}
        kwargs[name] = VectorEncoderFactory(
            hidden_units=list(settings["hidden"]), activation=settings["activation"], **layer_norm
        )
    if settings["observation_scaler"]:
        kwargs["observation_scaler"] = StandardObservationScaler(mean=data["obs_mean"], std=data["obs_std"])
    kwargs["action_scaler"] = MinMaxActionScaler(minimum=data["action_low"], maximum=data["action_high"])
    if settings["reward_scaler"]:
        kwargs["reward_scaler"] = MultiplyRewardScaler(multiplier=float(data["reward_scale"]))
    if settings["actor_cosine_steps"]:
        schedule = CosineAnnealingLRFactory(T_max=settings["actor_cosine_steps"])
        kwargs["actor_optim_factory"] = AdamFactory(lr_scheduler_factory=schedule)
    return getattr(d3rlpy.algos, settings["config"])(**kwargs)


def evaluate(algo, env_id: str, episodes: int, first_seed: int) -> list[float]:
    """Returns of deterministic episodes, as rltrain's evaluation runs them (rltrain.evaluate.evaluate_policy, which
    this script cannot import; tests/test_bench_d3rlpy.py checks that both give the same returns): min(episodes, 16)
    envs of a sync vector env at a time, reset(seed=first_seed) giving env i the seed first_seed + i."""
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(env_id, num_envs=min(episodes, 16), vectorization_mode="sync")
    returns: list[float] = []
    batch = 0
    while len(returns) < episodes:
        obs, _ = envs.reset(seed=first_seed + batch * envs.num_envs)
        active = np.arange(envs.num_envs) < episodes - len(returns)
        episode_return = np.zeros(envs.num_envs)
        while active.any():
            obs, rewards, terminated, truncated, _ = envs.step(algo.predict(np.asarray(obs, dtype=np.float32)))
            episode_return += rewards * active
            ended = (terminated | truncated) & active
            returns.extend(episode_return[ended].tolist())
            active &= ~ended
        batch += 1
    envs.close()
    return returns[:episodes]


def main() -> None:
    args, settings = peer_args(__doc__.splitlines()[0], "the d3rlpy config and the budgets")

    import d3rlpy
    import numpy as np
    import torch
    from d3rlpy.logging import NoopAdapterFactory

    torch.set_num_threads(1)
    d3rlpy.seed(args.seed)
    data = dict(np.load(args.data))
    dataset = mdp_dataset(data)
    updates = int(settings["updates"])
    # the networks and optimizers are built before the clock starts, as rltrain's Trainer builds its agent (the
    # first optimizer also pays torch's lazy import of torch._dynamo, seconds on this machine)
    algo = algorithm_config(settings, data).create(device="cpu:0")
    algo.build_with_dataset(dataset)
    started = time.perf_counter()
    algo.fit(
        dataset,
        n_steps=updates,
        n_steps_per_epoch=updates,
        experiment_name="bench",
        with_timestamp=False,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
        save_interval=updates + 1,
        evaluators=None,
    )
    trained = time.perf_counter()
    returns = evaluate(algo, str(data["env_id"]), settings["eval_episodes"], settings["eval_seed"])
    finished = time.perf_counter()
    args.out.write_text(
        json.dumps(
            {
                "library": f"d3rlpy {d3rlpy.__version__}",
                "algo": settings["config"].removesuffix("Config"),
                "steps": int(algo.grad_step),
                "train_s": trained - started,
                "run_s": finished - started,
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
                "returns": returns,
                "d3rlpy_config": json.loads(algo.config.serialize()),
            }
        )
    )


if __name__ == "__main__":
    main()
