"""Gymnasium vector envs for training and evaluation, with rltrain's conventions made explicit.

Autoreset is SAME_STEP: when a sub-env's episode ends, step() already returns the first observation of the
next episode and the true last observation sits in info["final_obs"] (masked by info["_final_obs"]). The
loops use it to bootstrap on truncation and to store the real next state in replay.
"""

from __future__ import annotations

import difflib

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from rltrain.envs.bandit import register as register_bandit
from rltrain.errors import RltrainError

register_bandit()
VECTORIZATION = ("sync", "async", "vector_entry_point")


def check_env_id(env_id: str) -> None:
    """Fail with one sentence if `env_id` is not registered, suggesting close matches."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
    hint = (
        f" Did you mean {', '.join(close)}?"
        if close
        else " `python -c 'import gymnasium; gymnasium.pprint_registry()'` lists them."
    )
    raise RltrainError(f"env.id={env_id} is not a registered gymnasium environment.{hint}")


def make_env(env_cfg: dict, render_mode: str | None = None) -> gym.Env:
    """One plain env instance, for the loops that step a single env (tabular, bandit, planning)."""
    check_env_id(env_cfg["id"])
    kwargs = dict(env_cfg.get("kwargs", {}))
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    return gym.make(env_cfg["id"], **kwargs)


def grid_shape(env: gym.Env) -> tuple[int, int] | None:
    """(rows, columns) of a toy-text grid world, or None for envs whose states are not a grid."""
    inner = env.unwrapped
    if hasattr(inner, "nrow") and hasattr(inner, "ncol"):
        return int(inner.nrow), int(inner.ncol)
    if hasattr(inner, "shape") and isinstance(inner.shape, tuple) and len(inner.shape) == 2:
        return tuple(int(n) for n in inner.shape)
    return None


def make_vector_env(env_cfg: dict, num_envs: int, vectorization: str | None = None, render_mode: str | None = None):
    """A gymnasium vector env with SAME_STEP autoreset and episode statistics (info["episode"])."""
    mode = vectorization or env_cfg.get("vectorization", "sync")
    if mode not in VECTORIZATION:
        raise RltrainError(f"env.vectorization={mode} is unknown; pick one of {', '.join(VECTORIZATION)}.")
    kwargs = dict(env_cfg.get("kwargs", {}))
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    vector_kwargs = {"autoreset_mode": AutoresetMode.SAME_STEP} if mode != "vector_entry_point" else {}
    envs = gym.make_vec(
        env_cfg["id"], num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs, **kwargs
    )
    autoreset = envs.metadata.get("autoreset_mode")
    if autoreset != AutoresetMode.SAME_STEP:
        envs.close()
        raise RltrainError(
            f"{env_cfg['id']}'s native vector env resets in {getattr(autoreset, 'value', autoreset)} mode, "
            "but rltrain's "
            "loops need same-step autoreset to bootstrap truncated episodes; use env.vectorization=sync or async."
        )
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def final_observations(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """`next_obs` with each finished sub-env's row replaced by its true final observation."""
    if "_final_obs" not in infos:
        return next_obs
    mask = infos["_final_obs"]
    real = next_obs.copy()
    real[mask] = np.stack(infos["final_obs"][mask])
    return real


def finished_episodes(infos: dict) -> list[tuple[float, int]]:
    """(return, length) of each episode that ended in this step."""
    if "_episode" not in infos:
        return []
    mask = infos["_episode"]
    return list(zip(infos["episode"]["r"][mask].tolist(), infos["episode"]["l"][mask].tolist()))
