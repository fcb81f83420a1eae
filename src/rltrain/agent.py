"""The agent contract, and the one helper that builds an agent from its config."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import torch
from hydra.utils import get_class

from rltrain.errors import RltrainError


class Agent(Protocol):
    kind: ClassVar[str]  # which loop drives it: onpolicy | offpolicy | ...
    observation_spaces: ClassVar[tuple[type[gym.Space], ...]]  # supported observation space types
    action_spaces: ClassVar[tuple[type[gym.Space], ...]]  # supported action space types
    # optional: attributes the unwrapped env must have, with what they are, e.g. {"P": "a transition table"}

    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor: ...

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def agent_class(algo_cfg: dict) -> type:
    try:
        return get_class(algo_cfg["_target_"])
    except Exception as exc:  # an ImportError or a missing attribute
        raise RltrainError(f"algo._target_={algo_cfg.get('_target_')} cannot be imported ({exc}).") from None


def space_mismatch(cls: type, observation_space: gym.Space, action_space: gym.Space, env=None) -> str | None:
    """Why `cls` cannot run on these spaces (and on `env`, for agents that need more of it), or None."""
    for what, space, allowed in (
        ("observation", observation_space, cls.observation_spaces),
        ("action", action_space, cls.action_spaces),
    ):
        if not isinstance(space, allowed):
            needs = " or ".join(a.__name__ for a in allowed)
            return f"needs a {needs} {what} space, but the env has {space}"
        if isinstance(space, gym.spaces.Box) and len(space.shape) != 1 and what == "action":
            return f"needs a flat Box action space, but the env has shape {space.shape}"
    if env is not None:
        for attribute, what in getattr(cls, "needs_env_attributes", {}).items():
            if not hasattr(env.unwrapped, attribute):
                return f"needs {what}, which this env lacks"
    return None


def build_agent(algo_cfg: dict, **runtime: Any):
    """Instantiate `algo_cfg` (a plain dict with `_target_`) with the runtime arguments its constructor takes."""
    cls = agent_class(algo_cfg)
    hyper = {k: v for k, v in algo_cfg.items() if k not in ("_target_", "name")}
    accepted = inspect.signature(cls.__init__).parameters
    unknown = [k for k in hyper if k not in accepted]
    if unknown:
        raise RltrainError(f"algo={algo_cfg.get('name')} has no hyperparameter {', '.join(unknown)}; remove it.")
    runtime = {k: v for k, v in runtime.items() if k in accepted}
    return cls(**hyper, **runtime)
