"""Gymnasium vector envs for training and evaluation, with rltrain's conventions made explicit.

Autoreset is SAME_STEP: when a sub-env's episode ends, step() already returns the first observation of the
next episode and the true last observation sits in info["final_obs"] (masked by info["_final_obs"]). The
loops use it to bootstrap on truncation and to store the real next state in replay.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from rltrain.envs.bandit import register as register_bandit
from rltrain.errors import RltrainError

register_bandit()
VECTORIZATION = ("sync", "async", "vector_entry_point")


def registered_name(env_id: str) -> str:
    """The id gymnasium registers: `env_id` itself, or `<id>` of gymnasium's `<module>:<id>` form."""
    return env_id.rpartition(":")[2]


def import_env_module(env_id: str) -> None:
    """Import the module of a `<module>:<id>` env id (gymnasium's form for an env another package registers on
    import), as gymnasium.make would, with one sentence for each way that can fail."""
    module, _, name = env_id.rpartition(":")
    if not name or not all(part.isidentifier() for part in module.split(".")):
        raise RltrainError(f"env.id={env_id} must be a gymnasium id or <module>:<id>, e.g. my_package:MyEnv-v0.")
    import_named_module(f"env.id={env_id}", module, "registers no envs")


def import_named_module(setting: str, module: str, stdlib_reason: str):
    """Import `module`, which the config's `setting` names, with one sentence for each way that can fail; never one
    of Python's standard library (`stdlib_reason` says why it cannot be meant), so a config cannot run its code."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        raise RltrainError(f"{setting} names {module}, a module of Python's standard library, which {stdlib_reason}.")
    if importlib.util.find_spec(top) is None:
        raise RltrainError(
            f"{setting} names the module {module}, which is not installed here; pip install the package that "
            "provides it, or add its folder to PYTHONPATH."
        )
    try:
        return importlib.import_module(module)
    except Exception as exc:  # the package's own error, whatever it is
        raise RltrainError(f"{setting}: importing {module} failed ({type(exc).__name__}: {exc}).") from None


def config_wrappers(env_cfg: dict) -> list[Callable[[gym.Env], gym.Env]]:
    """env.wrappers: gymnasium wrappers, each `{entry_point: <module>:<class>, kwargs: {...}}`, applied in order to
    each env right after gymnasium.make (as an env spec's additional_wrappers are, which is how a dataset recorded
    through wrappers gets them back)."""
    wrappers = env_cfg.get("wrappers") or []
    if not isinstance(wrappers, (list, tuple)):
        raise RltrainError(
            f"env.wrappers={wrappers} must be a list of {{entry_point: <module>:<class>, kwargs: {{}}}}."
        )
    loaded = []
    for k, wrapper in enumerate(wrappers):
        mapping = wrapper if isinstance(wrapper, dict) else {}
        module, _, name = str(mapping.get("entry_point")).rpartition(":")
        kwargs = mapping.get("kwargs") or {}
        well_formed = bool(mapping) and set(mapping) <= {"entry_point", "kwargs"} and isinstance(kwargs, dict)
        if not (well_formed and module and name.isidentifier()):
            raise RltrainError(
                f"env.wrappers[{k}]={wrapper} must be {{entry_point: <module>:<class>, kwargs: {{...}}}}, e.g. "
                "{entry_point: gymnasium.wrappers:TimeAwareObservation}."
            )
        found = getattr(import_named_module(f"env.wrappers[{k}]", module, "holds no gymnasium wrappers"), name, None)
        if not callable(found):
            raise RltrainError(f"env.wrappers[{k}]: {module} has no wrapper {name}.")
        loaded.append(functools.partial(quietly_wrap, found, dict(kwargs)))
    return loaded


def quietly_wrap(wrap: Callable, kwargs: dict, env: gym.Env) -> gym.Env:
    with warnings.catch_warnings():  # gymnasium's own RescaleObservation builds float64 bounds for float32 spaces
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        return wrap(env, **kwargs)


def check_env_id(env_id: str) -> None:
    """Fail with one sentence if `env_id` is not registered, suggesting close matches. `<module>:<id>` imports the
    installed `module` first (never one of Python's standard library), which is to register `id`."""
    module, _, name = env_id.rpartition(":")
    if module:
        import_env_module(env_id)
    if name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3)
    if module:
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RltrainError(f"env.id={env_id}: importing {module} registered no env {name}.{hint}")
    hint = (
        f" Did you mean {', '.join(close)}?"
        if close
        else " `python -c 'import gymnasium; gymnasium.pprint_registry()'` lists them."
    )
    raise RltrainError(f"env.id={env_id} is not a registered gymnasium environment.{hint}")


EPISODE_STEP_CAP = 100_000  # an evaluated or recorded episode this long is taken for one that will never end


def check_episode_length(length: int, spec) -> None:
    """Stop an evaluation or a recording whose episode has run EPISODE_STEP_CAP steps (or past the env's own time
    limit, if longer): on an env without a time limit a policy that never ends an episode would hang it forever."""
    limit = getattr(spec, "max_episode_steps", None) or 0
    if length >= max(EPISODE_STEP_CAP, limit + 1):
        name = getattr(spec, "id", None) or "the env"
        raise RltrainError(
            f"an episode of {name} ran {length:,} steps without ending, so evaluating or recording it would never "
            "finish; give the env a time limit: +env.kwargs.max_episode_steps=N (gymnasium's TimeLimit)."
        )


class DiscretizedActions(gym.ActionWrapper):
    """A Box action space as Discrete(bins ** dims): action k picks, for each dimension, one of `bins` evenly
    spaced values from low to high (k enumerates the combinations, the last dimension fastest)."""

    def __init__(self, env: gym.Env, bins: int):
        super().__init__(env)
        box = env.action_space
        self.grid_shape = (bins,) * box.shape[0]
        self.values = [np.linspace(low, high, bins, dtype=box.dtype) for low, high in zip(box.low, box.high)]
        self.dtype = box.dtype
        self.action_space = gym.spaces.Discrete(bins ** box.shape[0])

    def action(self, action) -> np.ndarray:
        per_dimension = np.unravel_index(int(action), self.grid_shape)
        return np.array([values[i] for values, i in zip(self.values, per_dimension)], dtype=self.dtype)


MAX_DISCRETE_ACTIONS = 4096


def discrete_start(space: gym.Space) -> int:
    return int(space.start) if isinstance(space, gym.spaces.Discrete) else 0


def action_choices(space: gym.Space) -> tuple[int, ...] | None:
    """The choices per dimension of a flat MultiDiscrete or MultiBinary action space of at most MAX_DISCRETE_ACTIONS
    combinations, which agents see as one Discrete space; None for any other space."""
    choices = None
    if isinstance(space, gym.spaces.MultiBinary) and len(space.shape) == 1:
        choices = (2,) * space.shape[0]
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        choices = tuple(int(n) for n in space.nvec)
    return choices if choices and math.prod(choices) <= MAX_DISCRETE_ACTIONS else None


def space_name(space: gym.Space) -> str:
    """A space as an error sentence names it: a Box by its shape and dtype, not its (long) bounds."""
    return f"Box(shape {space.shape}, {space.dtype})" if isinstance(space, gym.spaces.Box) else str(space)


def agent_action_space(space: gym.Space) -> gym.Space:
    """The action space an agent sees for the env's `space`: a Discrete one counted from 0, and a MultiDiscrete or
    MultiBinary one of at most MAX_DISCRETE_ACTIONS combinations as one Discrete of every combination (the last
    dimension fastest); any other space as it is."""
    choices = action_choices(space)
    if choices is not None:
        return gym.spaces.Discrete(math.prod(choices))
    if discrete_start(space):
        return gym.spaces.Discrete(space.n)
    return space


def env_action(space: gym.Space, action):
    """The env's action for the agent's `action` in agent_action_space(space)."""
    choices = action_choices(space)
    if choices is not None:
        start = getattr(space, "start", 0)  # MultiDiscrete may have one per dimension
        return (np.array(np.unravel_index(int(action), choices)) + start).astype(space.dtype)
    return action + discrete_start(space) if discrete_start(space) else action


def agent_actions(space: gym.Space, actions: np.ndarray) -> np.ndarray:
    """A batch of the env's actions [N, ...] as the agent's, in agent_action_space(space): what a dataset another
    tool wrote holds, read into the actions rltrain's agents learn."""
    choices = action_choices(space)
    if choices is not None:
        labels = np.asarray(actions, dtype=np.int64).reshape(len(actions), len(choices))
        return np.ravel_multi_index(tuple((labels - getattr(space, "start", 0)).T), choices)
    return np.asarray(actions) - discrete_start(space) if discrete_start(space) else np.asarray(actions)


class AgentSpaces(gym.Wrapper):
    """The env as agents take it: Discrete(n, start=s) observations and actions counted from 0, as the networks'
    outputs and the tables' rows are, and MultiDiscrete / MultiBinary actions as one Discrete space of their
    combinations (agent_action_space); the env still gets and gives its own labels."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.obs_start = discrete_start(env.observation_space)
        if self.obs_start:
            self.observation_space = gym.spaces.Discrete(env.observation_space.n)
        self.action_space = agent_action_space(env.action_space)

    def env_action(self, action):
        return env_action(self.env.action_space, action)

    def env_observation(self, obs):
        return obs + self.obs_start

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs - self.obs_start, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(self.env_action(action))
        return obs - self.obs_start, reward, terminated, truncated, info


def agent_spaces(env: gym.Env) -> gym.Env:
    """`env`, wrapped in AgentSpaces when agents would see a space of it otherwise than the env gives it."""
    if discrete_start(env.observation_space) or agent_action_space(env.action_space) is not env.action_space:
        return AgentSpaces(env)
    return env


def action_wrappers(env_cfg: dict, action_space: gym.Space) -> list:
    """The wrappers env.discretize asks for, after checking that it fits the env's action space."""
    bins = env_cfg.get("discretize")
    if bins is None:
        return []
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise RltrainError(f"env.discretize={bins} must be a whole number of bins >= 2 (or null).")
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise RltrainError(
            f"env.discretize={bins} needs a flat Box action space, but {env_cfg['id']} has {action_space}."
        )
    if not np.all(np.isfinite(action_space.low) & np.isfinite(action_space.high)):
        raise RltrainError(f"env.discretize needs finite action bounds, but {env_cfg['id']} has {action_space}.")
    if bins ** action_space.shape[0] > MAX_DISCRETE_ACTIONS:
        raise RltrainError(
            f"env.discretize={bins} on {action_space.shape[0]} action dimensions makes {bins ** action_space.shape[0]} "
            f"actions, more than {MAX_DISCRETE_ACTIONS}; use fewer bins."
        )
    return [lambda env: DiscretizedActions(env, bins)]


def flatten_observation(env: gym.Env) -> gym.Env:
    """Dict, Tuple, Discrete and multi-dimensional Box observations as one flat float32 Box, the networks' input
    (Discrete parts one-hot, pixels as their raw values)."""
    return gym.wrappers.DtypeObservation(gym.wrappers.FlattenObservation(env), np.float32)


def env_wrappers(env_cfg: dict, env: gym.Env) -> list:
    """The wrappers env.flatten_observation and env.discretize ask for, checked against `env`'s spaces."""
    flatten = env_cfg.get("flatten_observation", False)
    if not isinstance(flatten, bool):
        raise RltrainError(f"env.flatten_observation={flatten} must be true or false.")
    return ([flatten_observation] if flatten else []) + action_wrappers(env_cfg, env.action_space)


def raised_in_package(error: BaseException, package: str) -> bool:
    """Whether `error` was raised from inside the installed `package`'s own files (its traceback passes through
    them; gymnasium's envs/mujoco/ folder is not the mujoco package)."""
    spec = importlib.util.find_spec(package)
    folders = [os.path.join(folder, "") for folder in (spec.submodule_search_locations or [])] if spec else []
    return any(frame.filename.startswith(tuple(folders)) for frame in traceback.extract_tb(error.__traceback__))


def make_env(env_cfg: dict, render_mode: str | None = None) -> gym.Env:
    """One plain env instance (with env.flatten_observation and env.discretize applied), for probing spaces and for
    single-env loops."""
    check_env_id(env_cfg["id"])
    kwargs = dict(env_cfg.get("kwargs", {}))
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(env_cfg["id"], **kwargs)
    except gym.error.DependencyNotInstalled as exc:  # Box2D and MuJoCo envs need an extra
        extra = next((e for e in ("box2d", "mujoco") if e in str(exc).lower()), None)
        fix = f"pip install 'rltrain[{extra}]' (make installs it)" if extra else "install what it names"
        raise RltrainError(f"env.id={env_cfg['id']} needs a package that is missing ({exc}); {fix}.") from None
    except Exception as exc:
        if kwargs and isinstance(exc, TypeError) and "keyword argument" in str(exc):
            raise RltrainError(
                f"env.kwargs {kwargs} do not fit {env_cfg['id']} ({str(exc).split(' was raised from')[0]}); check "
                "their names against the env's constructor."
            ) from None
        if "MUJOCO_GL" in os.environ and raised_in_package(exc, "mujoco"):  # the backend is picked at import
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            raise RltrainError(
                f"env.id={env_cfg['id']} could not load MuJoCo with MUJOCO_GL={os.environ['MUJOCO_GL']} ({reason}); "
                "set it to a backend this machine has (egl needs libegl1, osmesa needs libosmesa6) or unset it."
            ) from exc
        raise
    try:
        for wrap in config_wrappers(env_cfg):
            env = wrap(env)
    except Exception as exc:
        env.close()
        if isinstance(exc, RltrainError):
            raise
        raise RltrainError(f"env.wrappers could not wrap {env_cfg['id']}: {type(exc).__name__}: {exc}.") from None
    env = agent_spaces(env)
    try:
        for wrap in env_wrappers(env_cfg, env):
            env = wrap(env)
    except RltrainError:
        env.close()
        raise
    return env


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
    for key in ("wrappers", "discretize", "flatten_observation"):
        if env_cfg.get(key) not in (None, False, []) and mode == "vector_entry_point":
            raise RltrainError(f"env.{key} wraps each env, so it needs env.vectorization=sync or async.")
    configured = config_wrappers(env_cfg)
    wrappers = None if mode == "vector_entry_point" else [*configured, agent_spaces]
    if env_cfg.get("discretize") is not None or env_cfg.get("flatten_observation"):
        probe = gym.make(env_cfg["id"], **kwargs)
        for wrap in configured:
            probe = wrap(probe)
        probe = agent_spaces(probe)
        probe.close()
        wrappers += env_wrappers(env_cfg, probe)
    envs = gym.make_vec(
        env_cfg["id"],
        num_envs=num_envs,
        vectorization_mode=mode,
        vector_kwargs=vector_kwargs,
        wrappers=wrappers,
        **kwargs,
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


def first_non_finite(values) -> tuple[tuple[int, ...], float] | None:
    """(index, value) of the first NaN or infinite entry of a reward or observation (scalar or array), or None."""
    if isinstance(values, (int, float)):  # one plain env's reward: the common case, kept cheap
        return None if math.isfinite(values) else ((), values)
    array = np.asarray(values)
    if array.dtype.kind not in "fc":  # integer observations (discrete states) are always finite
        return None
    bad = np.argwhere(~np.isfinite(array))
    if not len(bad):
        return None
    index = tuple(int(i) for i in bad[0])
    return index, float(array[index])


class CheckedEnv:
    """A plain or vector env whose step() stops the run with one sentence naming the env, the step and the value
    when the env raises or returns a NaN or infinite observation (the final one of an episode included) or reward;
    everything else is the env's own."""

    def __init__(self, env, env_id: str, at: Callable[[], str]):
        self.env = env
        self.env_id = env_id
        self.at = at  # where the run is ("at env step 1200"), asked only when something is wrong

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def step(self, actions):
        try:
            result = self.env.step(actions)
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
            raise RltrainError(
                f"env {self.env_id} raised {type(exc).__name__} ({detail}) in step() {self.at()}; the run stopped "
                "and its last checkpoint is kept."
            ) from exc
        obs, rewards, infos = result[0], result[1], result[-1]
        self.check("observation", (), obs)
        self.check("reward", (), rewards)
        if "_final_obs" in infos:  # a vector env's episodes that ended: their true last observations
            for i in np.flatnonzero(infos["_final_obs"]):
                self.check("observation", (int(i),), infos["final_obs"][i])
        return result

    def check(self, what: str, prefix: tuple[int, ...], values) -> None:
        bad = first_non_finite(values)
        if bad is not None:
            index, value = bad
            at = f"{list(prefix + index)}" if prefix + index else ""
            raise RltrainError(
                f"env {self.env_id} returned a non-finite {what} {self.at()} ({what}{at} = {value}); the run "
                "stopped and its last checkpoint is kept."
            )


def as_observation(obs: np.ndarray, observation_space: gym.Space, device: torch.device) -> torch.Tensor:
    """Observations as the networks take them: float32 tensors (integer Box observations included); the states of
    a Discrete observation space stay integers; Dict and Tuple observations stay as they are (only a random policy
    acts on them: an agent's env has env.flatten_observation)."""
    if isinstance(observation_space, (gym.spaces.Dict, gym.spaces.Tuple)):
        return obs
    if isinstance(observation_space, gym.spaces.Discrete):
        return torch.as_tensor(obs, device=device)
    return torch.as_tensor(obs, dtype=torch.float32, device=device)


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
