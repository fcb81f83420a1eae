"""The agent contract: a Protocol per kind of training, listing everything its loop reads of an agent; and
resolving (class, fit to the env's spaces, device) and building an algorithm, once per run."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
import torch
from hydra.utils import get_class

from rltrain.buffers import RolloutBuffer
from rltrain.envs import MAX_DISCRETE_ACTIONS, make_env, space_name
from rltrain.errors import RltrainError
from rltrain.schema import closest

Actions = torch.Tensor | np.ndarray


class Agent(Protocol):
    """What every algorithm has: the Trainer, evaluation, rltrain-eval and checkpoints read these."""

    kind: ClassVar[str]  # which loop drives it: a key of loops.LOOPS and of PROTOCOLS below
    # the space types it supports; a Box must be flat (env.flatten_observation makes it so), a Discrete counts from
    # 0 (envs.make_env shifts one with a start and enumerates MultiDiscrete / MultiBinary actions as one), and Box
    # actions of tanh-bounded policies need finite bounds
    observation_spaces: ClassVar[tuple[type[gym.Space], ...]]
    action_spaces: ClassVar[tuple[type[gym.Space], ...]]
    # optional: needs_env_attributes = {"P": "a transition table"}, what the unwrapped env must have besides
    # optional: needs_dataset = True, learns from a dataset (demonstrations or logged transitions): the run needs
    #   dataset=<minari id>, and the constructor takes it as `dataset` (a datasets.Dataset; None when built from a
    #   checkpoint only to act)

    # actions for a batch of observations; explore=False is the deterministic policy evaluation runs
    def act(self, obs: Any, explore: bool) -> Actions: ...

    # the math: learn from a batch (a rollout, episodes, a replay sample, one transition), return named scalars
    def update(self, batch: dict[str, Any]) -> dict[str, Any]: ...

    # everything needed to resume: networks, optimizers, counters, random generators
    def state_dict(self) -> dict[str, Any]: ...

    # the inverse of state_dict, on an agent built from the same config
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OnPolicyAgent(Agent, Protocol):
    """loops.onpolicy: rollouts of rollout_steps x num_envs transitions, GAE, one update() per rollout."""

    rollout_steps: int  # env steps per env in one rollout
    gamma: float  # discount of GAE and of the truncation bootstrap
    gae_lambda: float  # GAE's lambda

    # one exploring step: {"obs" to store, "action", "env_action" to step the envs with, "log_prob", "value"}
    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]: ...

    # V(obs) of raw observations: bootstraps the end of a rollout and time-limit truncations
    def value(self, obs: torch.Tensor) -> torch.Tensor: ...

    # the rewards as the rollout stores them (divided by a running return std, or unchanged)
    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor: ...

    # once per rollout, before GAE: change rollout.rewards in place from its obs, actions and terminated flags.
    # A no-op for agents that learn from the env's reward; imitation (GAIL) writes its learned reward here
    def relabel_rewards(self, rollout: RolloutBuffer) -> None: ...


class EpisodicAgent(Agent, Protocol):
    """loops.episodic: whole episodes; one update() once episodes_per_update of them have ended."""

    gamma: float  # discount of the returns-to-go and of the truncation bootstrap
    episodes_per_update: int  # finished episodes that make one batch

    # one exploring step: {"obs" to store, "action", "env_action" to step the envs with, ...}
    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]: ...

    # V(obs) of raw observations (zeros without a critic): bootstraps time-limit truncations
    def value(self, obs: torch.Tensor) -> torch.Tensor: ...


class OffPolicyAgent(Agent, Protocol):
    """loops.offpolicy, with the Trainer's replay buffer: act(explore=True), store, and update() on samples."""

    buffer_size: int  # replay capacity in transitions (the Trainer caps it at total_steps)
    batch_size: int  # transitions per sampled batch
    learning_starts: int  # env steps of uniformly random actions before the first update
    train_every: int  # env steps (summed over envs) between rounds of updates
    gradient_steps: int  # update() calls per round
    n_step: int  # the sampled batches carry n-step returns and their discounts (1: one-step)
    gamma: float  # discount of those n-step returns


class TabularAgent(Agent, Protocol):
    """loops.tabular: one plain env, one transition at a time; update() takes obs, actions, rewards, next_obs,
    terminated and next_actions of one transition."""

    # the action for one state (epsilon-greedy when exploring); the loop picks the next action before updating
    def choose(self, state: int, explore: bool) -> int: ...


class BanditAgent(Agent, Protocol):
    """loops.bandit: act() pulls an arm for a dummy observation, update() takes {"actions", "rewards"} of a pull.
    Nothing more: the loop reads regret from the env (needs_env_attributes)."""


class DynamicProgrammingAgent(Agent, Protocol):
    """loops.dynamic_programming: solves the env's known model; act() is then the greedy policy."""

    # sweeps over the transition table env.unwrapped.P, yielding the largest change of V in each
    def plan(self, table: dict) -> Iterator[float]: ...


class OfflineAgent(Agent, Protocol):
    """loops.offline: no env steps; update() on minibatches of trainer.dataset (a datasets.Dataset: obs,
    actions, rewards, next_obs, terminated, truncated), one per step of the axis (which counts updates)."""

    batch_size: int  # dataset transitions per update
    transitions: torch.Tensor | None  # the indices of the dataset's transitions to sample from (None: all)


class PlanningAgent(Agent, Protocol):
    """loops.planning: one env, the Trainer's replay buffer; act(explore=True) plans with a learned model, and
    every train_every env steps update() refits that model on every stored transition (replay.contents())."""

    buffer_size: int  # replay capacity in transitions (the Trainer caps it at total_steps)
    learning_starts: int  # env steps of uniformly random actions before the first model fit
    train_every: int  # env steps between model fits


PROTOCOLS: dict[str, type] = {
    "onpolicy": OnPolicyAgent,
    "episodic": EpisodicAgent,
    "offpolicy": OffPolicyAgent,
    "tabular": TabularAgent,
    "bandit": BanditAgent,
    "dynamic_programming": DynamicProgrammingAgent,
    "offline": OfflineAgent,
    "planning": PlanningAgent,
}


def protocol_members(protocol: type) -> dict[str, bool]:
    """Every member a protocol (and the protocols it extends) lists: name -> whether it is a method."""
    members: dict[str, bool] = {}
    for klass in reversed(protocol.__mro__):
        if not getattr(klass, "_is_protocol", False) or klass is Protocol:
            continue
        for name in klass.__dict__.get("__annotations__", {}):
            members[name] = False
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("_"):
                members[name] = True
    return members


def missing_members(agent: Any) -> list[str]:
    """The members of its kind's protocol that `agent` lacks (a method must also be callable); [] if none."""
    protocol = PROTOCOLS.get(getattr(agent, "kind", None))
    if protocol is None:
        return ["kind"]
    missing = []
    for name, is_method in protocol_members(protocol).items():
        if not hasattr(agent, name) or (is_method and not callable(getattr(agent, name))):
            missing.append(name)
    return missing


# --- resolving an algorithm --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Algorithm:
    """An algorithm resolved for one run: its class, checked to fit the env's spaces."""

    cls: type
    observation_space: gym.Space
    action_space: gym.Space

    @property
    def kind(self) -> str | None:
        return getattr(self.cls, "kind", None)


def agent_class(algo_cfg: dict) -> type:
    try:
        return get_class(algo_cfg["_target_"])
    except Exception as exc:  # an ImportError or a missing attribute
        raise RltrainError(f"algo._target_={algo_cfg.get('_target_')} cannot be imported ({exc}).") from None


def one_space_mismatch(what: str, space: gym.Space, allowed: tuple[type, ...]) -> str | None:
    """Why a space of kind `what` (observation, action) is not one of `allowed`, or None."""
    if not isinstance(space, allowed):
        needs = " or ".join(a.__name__ for a in allowed)
        return f"needs a {needs} {what} space, but the env has {space_name(space)}"
    if isinstance(space, gym.spaces.Box) and len(space.shape) != 1:  # the networks are MLPs
        return f"needs a flat Box {what} space, but the env has shape {space.shape}"
    return None


def space_mismatch(cls: type, observation_space: gym.Space, action_space: gym.Space, env=None) -> str | None:
    """Why `cls` cannot run on these spaces (and on `env`, for agents that need more of it), or None."""
    problem = one_space_mismatch("observation", observation_space, cls.observation_spaces)
    problem = problem or one_space_mismatch("action", action_space, cls.action_spaces)
    if problem:
        return problem
    if env is not None:
        for attribute, what in getattr(cls, "needs_env_attributes", {}).items():
            if not hasattr(env.unwrapped, attribute):
                return f"needs {what}, which this env lacks"
    return None


def fitting_algorithms(env: gym.Env, algo_dir: Path, with_dataset: bool = False) -> list[str]:
    """Names of the shipped algorithms that can run on this env: those that learn from a dataset when the run has
    one, else those that learn from the env alone."""
    from omegaconf import OmegaConf

    names = []
    for path in sorted(algo_dir.glob("*.yaml")):
        try:
            cls = agent_class(OmegaConf.to_container(OmegaConf.load(path)))
        except RltrainError:
            continue
        if getattr(cls, "needs_dataset", False) != with_dataset:
            continue
        if space_mismatch(cls, env.observation_space, env.action_space, env) is None:
            names.append(path.stem)
    return names


def resolve_algorithm(config: dict, algo_dir: Path | None = None) -> Algorithm:
    """The algorithm's class and the env's spaces; fails in a second, before any env worker or network exists,
    with one sentence (and the algorithms that would fit, given `algo_dir`) if it cannot run on the env, or takes
    no dataset but the run gives one."""
    cls = agent_class(config["algo"])
    with_dataset = config.get("dataset") is not None
    env = make_env(config["env"])  # one plain instance: cheap, and no vector workers yet
    try:
        observation_space, action_space = env.observation_space, env.action_space
        observation_problem = one_space_mismatch("observation", observation_space, cls.observation_spaces)
        action_problem = one_space_mismatch("action", action_space, cls.action_spaces)
        flattenable = observation_problem is not None and gym.spaces.Box in cls.observation_spaces
        # env.flatten_observation fixes the observations only: where the actions do not fit either, name those
        names_action = action_problem is not None and (flattenable or observation_problem is None)
        names_observation = observation_problem is not None and not names_action
        problem = action_problem if names_action else observation_problem
        problem = problem or space_mismatch(cls, observation_space, action_space, env)  # the env attributes it needs
        # a dataset keeps the actions it was recorded with; its observations are flattened as the env's are
        discretizable = problem is not None and not with_dataset and isinstance(action_space, gym.spaces.Box)
        discretizable = discretizable and len(action_space.shape) == 1  # env.discretize splits a flat Box only
        # an example N whose N ** dims combinations env.discretize accepts (11 where that fits)
        bins = min(11, int(MAX_DISCRETE_ACTIONS ** (1 / action_space.shape[0]) + 1e-9)) if discretizable else 0
        if bins >= 2 and names_action and gym.spaces.Discrete in cls.action_spaces:
            problem += f"; add env.discretize=N to split each action dimension into N bins (e.g. env.discretize={bins})"
        if names_observation and flattenable:
            problem += "; add env.flatten_observation=true to feed it to the networks as one flat vector"
        elif names_observation and config["env"].get("flatten_observation"):
            problem += "; drop env.flatten_observation=true, which made the env's observations this Box"
        if not problem and with_dataset and not getattr(cls, "needs_dataset", False):
            problem = "learns from its own env steps and takes no dataset=; drop it, or use an algorithm that learns "
            problem += "from a dataset"
        if problem:
            fits = fitting_algorithms(env, algo_dir, with_dataset) if algo_dir else []
            where = config["env"]["id"] + (" with a dataset" if with_dataset else "")
            hint = f" Algorithms that fit {where}: {', '.join(fits)}." if fits else ""
            raise RltrainError(f"algo={config['algo']['name']} {problem}.{hint}")
    finally:
        env.close()
    return Algorithm(cls, observation_space, action_space)


def resolve_device(name: str, hidden: list[int]) -> torch.device:
    """cpu, cuda, or auto: CUDA only when there is a GPU and the networks are wide enough to gain from it."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RltrainError(
                "device=cuda was asked for, but this torch sees no CUDA GPU; use device=cpu or device=auto."
            )
        return torch.device("cuda")
    if name == "auto":
        wide = max(hidden, default=0) >= 256
        return torch.device("cuda" if torch.cuda.is_available() and wide else "cpu")
    raise RltrainError(f"device={name} is unknown; pick cpu, cuda or auto.")


def build_agent(algorithm: Algorithm, config: dict, device: torch.device, num_envs: int, dataset=None):
    """Instantiate the algorithm with its hyperparameters (config["algo"]) and the runtime arguments its
    constructor takes (spaces, network, device, total_steps, num_envs, seed, dataset); check it keeps its kind's
    contract."""
    algo_cfg = config["algo"]
    hyper = {k: v for k, v in algo_cfg.items() if k not in ("_target_", "name")}
    accepted = inspect.signature(algorithm.cls.__init__).parameters
    unknown = [k for k in hyper if k not in accepted]
    if unknown:
        close = closest(unknown[0], [k for k in accepted if k in algo_cfg])
        hint = f" (did you mean algo.{close}?)" if close else ""
        raise RltrainError(f"algo={algo_cfg.get('name')} has no hyperparameter {', '.join(unknown)}{hint}; remove it.")
    runtime = {
        "observation_space": algorithm.observation_space,
        "action_space": algorithm.action_space,
        "network": config["network"],
        "device": device,
        "total_steps": int(config["total_steps"]),
        "num_envs": num_envs,
        "seed": int(config["seed"]),
        "dataset": dataset,
    }
    agent = algorithm.cls(**hyper, **{k: v for k, v in runtime.items() if k in accepted})
    missing = missing_members(agent)
    if missing:
        raise RltrainError(
            f"algo={algo_cfg.get('name')} ({algorithm.cls.__name__}) lacks {', '.join(missing)}, which the "
            f"{algorithm.kind} loop reads (see {PROTOCOLS.get(algorithm.kind, Agent).__name__} in rltrain/agent.py)."
        )
    return agent
