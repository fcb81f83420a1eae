"""`rltrain-eval run=<run folder or checkpoint> [episodes=N] [video=true] ...`: replay a trained policy; and the
deterministic evaluation that training runs as well (the Trainer imports evaluate_policy from here)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from rltrain.errors import console_script, key_values

USAGE = (
    "usage: rltrain-eval run=<run folder or .pt checkpoint> [episodes=10] [checkpoint=last|best] [seed=S] "
    "[device=cpu|cuda|auto] [video=false] [video_path=<file.mp4>]"
)
DEFAULTS = {
    "run": None,
    "episodes": "10",
    "checkpoint": "last",
    "seed": None,
    "device": "cpu",
    "video": "false",
    "video_path": None,
}
EVAL_SEED_OFFSET = 10_000  # the eval env never replays the training env's seeds


def evaluate_policy(agent, envs, episodes: int, seed: int, device) -> np.ndarray:
    """Returns of `episodes` deterministic episodes, run `envs.num_envs` at a time."""
    import torch

    from rltrain.envs import as_observation, check_episode_length

    returns: list[float] = []
    batch = 0
    while len(returns) < episodes:
        obs, _ = envs.reset(seed=seed + batch * envs.num_envs)
        active = np.arange(envs.num_envs) < episodes - len(returns)
        episode_return = np.zeros(envs.num_envs)
        length = 0
        while active.any():
            check_episode_length(length, envs.spec)
            length += 1
            actions = agent.act(as_observation(obs, envs.single_observation_space, device), explore=False)
            if isinstance(actions, torch.Tensor):
                actions = actions.cpu().numpy()
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            episode_return += rewards * active
            ended = (terminated | truncated) & active
            returns.extend(episode_return[ended].tolist())
            active &= ~ended
        batch += 1
    return np.asarray(returns[:episodes])


def parse_args(argv: list[str]) -> dict:
    from rltrain.errors import RltrainError

    args = key_values(argv, DEFAULTS, "rltrain-eval", USAGE)
    if not args["run"]:
        raise RltrainError(f"run= is required. {USAGE}")
    if args["checkpoint"] not in ("last", "best"):
        raise RltrainError(f"checkpoint={args['checkpoint']} must be last or best.")
    try:
        args["episodes"] = int(args["episodes"])
    except ValueError:
        raise RltrainError(f"episodes={args['episodes']} must be a whole number.") from None
    if args["episodes"] < 1:
        raise RltrainError("episodes must be at least 1.")
    args["video"] = args["video"].lower() in ("1", "true", "yes")
    return args


def load_agent(checkpoint_path: Path, device_name: str):
    """The agent of a checkpoint, ready to act, with the checkpoint's config and payload."""
    import torch

    from rltrain import checkpoint
    from rltrain.agent import build_agent, resolve_algorithm, resolve_device

    payload = checkpoint.load(checkpoint_path)
    config = payload["config"]
    algorithm = resolve_algorithm(config)
    device = resolve_device(device_name, list(config["network"]["hidden"]))
    torch.set_num_threads(int(config.get("threads", 1)))
    agent = build_agent(algorithm, config, device, num_envs=int(config["num_envs"]))
    agent.load_state_dict(payload["agent"])
    return agent, config, payload, device


def record_video(agent, config: dict, device, seed: int, path: Path) -> tuple[Path, float]:
    """Roll out one deterministic episode with rgb_array rendering and write it as an mp4."""
    import torch

    from rltrain.errors import RltrainError

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise RltrainError("video=true needs the video extra: pip install 'rltrain[video]'.") from None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering needs no display
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("MUJOCO_GL")):
        os.environ["MUJOCO_GL"] = "egl"  # MuJoCo's default (glfw) needs a display; EGL renders without one
    from rltrain.envs import as_observation, check_episode_length, make_env

    env = make_env(config["env"], render_mode="rgb_array")
    frames, total = [], 0.0
    obs, _ = env.reset(seed=seed)
    try:
        frames.append(env.render())
    except Exception as error:  # each renderer fails its own way (mujoco.FatalError, ImportError, ValueError...)
        with contextlib.suppress(Exception):  # a viewer that never started may fail to close as well
            env.close()
        reason = str(error).strip().rstrip(".") or type(error).__name__
        raise RltrainError(
            f"video=true could not render {config['env']['id']}: {reason}. "
            "Without a display, MuJoCo envs need MUJOCO_GL=egl (libegl1) or MUJOCO_GL=osmesa (libosmesa6) and "
            "Box2D/classic-control envs need pygame; run with video=false to evaluate without a video."
        ) from error
    done = False
    while not done:
        check_episode_length(len(frames) - 1, env.spec)
        action = agent.act(as_observation(np.asarray([obs]), env.observation_space, device), explore=False)
        action = action.cpu().numpy() if isinstance(action, torch.Tensor) else action
        obs, reward, terminated, truncated, _ = env.step(action[0])
        total += float(reward)
        frames.append(env.render())
        done = terminated or truncated
    fps = env.metadata.get("render_fps", 30)
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
    return path, total


def print_table(agent, config: dict) -> None:
    """For a tabular agent on a grid world: the greedy policy as arrows and the value table as a grid."""
    from rltrain.envs import grid_shape, make_env
    from rltrain.tabular_view import format_grid, value_and_policy

    table = value_and_policy(agent)
    if table is None:
        return
    env = make_env(config["env"])
    shape = grid_shape(env)
    env.close()
    if shape is not None:
        print(format_grid(*table, shape, config["env"]["id"]))


def run(argv: list[str]) -> dict:
    import torch

    from rltrain import checkpoint
    from rltrain.envs import make_vector_env

    args = parse_args(argv)
    path = checkpoint.resolve(args["run"], f"{args['checkpoint']}.pt")
    agent, config, payload, device = load_agent(path, args["device"])
    seed = int(args["seed"]) if args["seed"] is not None else int(config["seed"]) + EVAL_SEED_OFFSET
    torch.manual_seed(seed)  # agents that sample while acting deterministically (MPC's planner) replay the same
    envs = make_vector_env(config["env"], min(args["episodes"], 16), vectorization="sync")
    try:
        returns = evaluate_policy(agent, envs, args["episodes"], seed, device)
    finally:
        envs.close()
    result = {
        "checkpoint": str(path),
        "step": int(payload["step"]),
        "episodes": len(returns),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
    }
    episodes = f"{len(returns)} episode" + "s" * (len(returns) > 1)
    print(
        f"{config['algo']['name']} on {config['env']['id']} ({path}, step {result['step']}): "
        f"return {result['return_mean']:.2f} ± {result['return_std']:.2f} over {episodes}"
    )
    print_table(agent, config)
    if args["video"]:
        run_dir = path.parents[1] if path.parent.name == "checkpoints" else path.parent
        video_path = Path(args["video_path"] or run_dir / "videos" / f"{args['checkpoint']}-step{result['step']}.mp4")
        torch.manual_seed(seed)
        video_path, video_return = record_video(agent, config, device, seed, video_path)
        result["video"] = str(video_path)
        print(f"video of one episode (return {video_return:.2f}): {video_path}")
    return result


def main(argv: list[str] | None = None) -> None:
    console_script("rltrain-eval", USAGE, run, argv)


if __name__ == "__main__":
    main()
