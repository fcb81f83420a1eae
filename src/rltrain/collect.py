"""`rltrain-collect id=<namespace>/<env>/<name>-v<k> ...`: record a Minari dataset.

Sources: a trained policy (`run=<run folder or .pt>`, acting deterministically or with `noise=`), the replay buffer
saved in an off-policy checkpoint (`source=replay`), or a uniform random policy (`env=<gym id>`, no run).
The dataset stores the env spec, ref_min_score (the random policy's mean return) and ref_max_score (the source
policy's deterministic eval return), so offline and imitation runs report normalized scores.
"""

from __future__ import annotations

from rltrain.errors import console_script, key_values

USAGE = (
    "usage: rltrain-collect id=<namespace>/<env>/<name>-v<k> "
    "(run=<run folder or .pt> [checkpoint=last|best] [source=policy|replay] [noise=0] | env=<gym id>) "
    "[episodes=N | steps=N] [seed=0] [ref_episodes=100] [ref_max=<return>] [overwrite=false] [device=cpu]"
)
DEFAULTS = {
    "id": None,
    "run": None,
    "checkpoint": "last",
    "source": "policy",
    "noise": "0",
    "env": None,
    "episodes": None,
    "steps": None,
    "seed": "0",
    "ref_episodes": "100",
    "ref_max": None,
    "overwrite": "false",
    "device": "cpu",
}
DEFAULT_EPISODES = 10


def whole_number(args: dict, key: str, minimum: int) -> int | None:
    from rltrain.errors import RltrainError

    if args[key] is None:
        return None
    try:
        value = int(args[key])
    except ValueError:
        raise RltrainError(f"{key}={args[key]} must be a whole number.") from None
    if value < minimum:
        raise RltrainError(f"{key}={value} must be at least {minimum}.")
    return value


def parse_args(argv: list[str]) -> dict:
    from rltrain.errors import RltrainError

    args = key_values(argv, DEFAULTS, "rltrain-collect", USAGE)
    if not args["id"]:
        raise RltrainError(f"id= is required. {USAGE}")
    if args["checkpoint"] not in ("last", "best"):
        raise RltrainError(f"checkpoint={args['checkpoint']} must be last or best.")
    if args["source"] not in ("policy", "replay"):
        raise RltrainError(f"source={args['source']} must be policy or replay.")
    if args["run"] and args["env"]:
        raise RltrainError("give run= (record that run's policy, on its env) or env= (a random policy), not both.")
    if not args["run"] and not args["env"]:
        raise RltrainError(
            f"give run=<run folder> to record a trained policy, or env=<gym id> for random play. {USAGE}"
        )
    if args["source"] == "replay" and not args["run"]:
        raise RltrainError("source=replay reads the replay buffer of a checkpoint; give run=<run folder or .pt>.")
    if args["episodes"] is not None and args["steps"] is not None:
        raise RltrainError("give episodes= or steps=, not both.")
    args["episodes"] = whole_number(args, "episodes", 1)
    args["steps"] = whole_number(args, "steps", 1)
    args["seed"] = whole_number(args, "seed", 0)
    args["ref_episodes"] = whole_number(args, "ref_episodes", 1)
    try:
        args["noise"] = float(args["noise"])
        args["ref_max"] = None if args["ref_max"] is None else float(args["ref_max"])
    except ValueError:
        raise RltrainError("noise= and ref_max= must be numbers.") from None
    if args["noise"] < 0:
        raise RltrainError(f"noise={args['noise']} must be >= 0.")
    if args["noise"] and args["source"] == "replay":
        raise RltrainError("noise= applies to a policy acting; a replay buffer holds what was already played.")
    args["overwrite"] = args["overwrite"].lower() in ("1", "true", "yes")
    return args


def mean_return(policy, env_cfg: dict, episodes: int, seed: int, device) -> float:
    from rltrain.envs import make_vector_env
    from rltrain.evaluate import evaluate_policy

    envs = make_vector_env(env_cfg, min(episodes, 16), vectorization="sync")
    try:
        return float(evaluate_policy(policy, envs, episodes, seed, device).mean())
    finally:
        envs.close()


def run(argv: list[str]) -> dict:
    import numpy as np
    import torch

    from rltrain import checkpoint, datasets
    from rltrain.envs import AgentSpaces, check_env_id, make_env
    from rltrain.errors import RltrainError
    from rltrain.evaluate import EVAL_SEED_OFFSET

    args = parse_args(argv)
    datasets.import_minari()
    dataset_id = args["id"]
    datasets.check_id_format(dataset_id)
    if datasets.dataset_path(dataset_id).exists() and not args["overwrite"]:
        raise RltrainError(
            f"dataset {dataset_id} already exists at {datasets.dataset_path(dataset_id)}; "
            "pass overwrite=true to replace it."
        )
    torch.set_num_threads(1)
    agent = payload = None
    device = torch.device("cpu")
    if args["run"]:
        from rltrain.evaluate import load_agent

        path = checkpoint.resolve(args["run"], f"{args['checkpoint']}.pt")
        agent, config, payload, device = load_agent(path, args["device"])
        env_cfg = config["env"]
        source = f"{config['algo']['name']} ({path}, step {int(payload['step'])})"
    else:
        check_env_id(args["env"])
        env_cfg = {"id": args["env"], "kwargs": {}}
        source = "a uniform random policy"
    if env_cfg.get("discretize") is not None or env_cfg.get("flatten_observation"):
        raise RltrainError(
            "the run trained on a discretized action space (env.discretize) or flattened observations "
            "(env.flatten_observation), which no env spec can record; record a run on the env's own spaces."
        )
    env = make_env(env_cfg)
    try:
        observation_space, action_space = env.observation_space, env.action_space
        if args["source"] == "replay":
            if "replay" not in payload:
                raise RltrainError(
                    f"{path} holds no replay buffer; train with checkpoint.replay_buffer=true, or record the "
                    "policy instead (drop source=replay)."
                )
            buffers = datasets.replay_episodes(
                payload["replay"], int(config["num_envs"]), args["episodes"], args["steps"], env
            )
            source = f"the replay buffer of {source}"
            algorithm = f"{config['algo']['name']}-replay"
        else:
            episodes = None if args["steps"] is not None else (args["episodes"] or DEFAULT_EPISODES)
            if agent is None:
                policy = datasets.RandomPolicy(action_space, args["seed"])
                algorithm = "random"
            else:
                policy = datasets.NoisyPolicy(
                    agent, (observation_space, action_space), args["noise"], args["seed"], device
                )
                algorithm = config["algo"]["name"] + (f"+noise{args['noise']:g}" if args["noise"] else "")
                if args["noise"]:
                    source += f" with noise {args['noise']:g}"
            buffers = datasets.record_policy(policy, env, episodes, args["steps"], args["seed"])
        # the env's own spec and spaces, which the recorded labels are in (AgentSpaces shows agents other ones)
        own = env.env if isinstance(env, AgentSpaces) else env
        env_spec, own_spaces = own.spec, (own.observation_space, own.action_space)
    finally:
        env.close()

    ref_seed = args["seed"] + EVAL_SEED_OFFSET
    ref_min = mean_return(
        datasets.RandomPolicy(action_space, ref_seed),
        env_cfg,
        args["ref_episodes"],
        ref_seed,
        device,
    )
    ref_max = args["ref_max"]
    if ref_max is None and agent is not None:
        ref_max = mean_return(agent, env_cfg, args["ref_episodes"], ref_seed, device)
    returns = np.array([float(np.sum(b.rewards)) for b in buffers])
    steps = int(sum(len(b.rewards) for b in buffers))
    datasets.write(
        dataset_id,
        buffers,
        env_spec,
        *own_spaces,
        algorithm,
        f"{len(buffers)} episodes of {source} on {env_cfg['id']}, recorded by rltrain-collect.",
        ref_min,
        ref_max,
        args["overwrite"],
    )
    result = {
        "id": dataset_id,
        "path": str(datasets.dataset_path(dataset_id)),
        "episodes": len(buffers),
        "steps": steps,
        "return_mean": float(returns.mean()),
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
    }
    refs = f"ref_min_score {ref_min:.1f}" + (f", ref_max_score {ref_max:.1f}" if ref_max is not None else "")
    from gymnasium.spaces import Box

    flat = isinstance(observation_space, Box) and len(observation_space.shape) == 1
    train = [f"dataset={dataset_id}"]
    if ":" in env_cfg["id"]:  # an env another package registers: the dataset records its id, not the module
        train.append(f"env=gym env.id={env_cfg['id']}")
    train += datasets.kwarg_overrides(dataset_id, env_cfg.get("kwargs", {}))
    train += [] if flat else ["env.flatten_observation=true"]
    print(
        f"Wrote {dataset_id}: {len(buffers)} episodes, {steps} steps of {source} on {env_cfg['id']}, "
        f"mean return {result['return_mean']:.1f} ({refs})\n"
        f"  path:   {result['path']}\n"
        f"  list:   minari list local\n"
        f"  train:  rltrain algo=bc {' '.join(train)}"
    )
    if ref_max is None:
        print("  note:   no ref_max_score (a random source); pass ref_max=<expert return> for normalized scores")
    return result


def main(argv: list[str] | None = None) -> None:
    console_script("rltrain-collect", USAGE, run, argv)


if __name__ == "__main__":
    main()
