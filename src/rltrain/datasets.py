"""Minari datasets: record them from a policy or a saved replay buffer, load them into preallocated device tensors.

Datasets live in Minari's own root (`MINARI_DATASETS_PATH`, else ~/.minari/datasets), so `minari list local`
shows them and rltrain reads datasets other tools wrote. Writing fills Minari's `EpisodeBuffer`s directly and
calls `create_dataset_from_buffers` (Minari's DataCollector would pull in jax).

A Minari episode of N steps holds N + 1 observations: the true next observation of step t is observation t + 1,
also after the last step (never a reset observation). Terminations and truncations stay apart: a truncated last
step (time limit, or the collector's step budget) is not a terminal for any TD target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rltrain.envs import (
    AgentSpaces,
    agent_action_space,
    agent_actions,
    check_episode_length,
    registered_name,
    space_name,
)
from rltrain.errors import RltrainError

INSTALL_HINT = "pip install 'rltrain[datasets]'"


def import_minari():
    try:
        import minari
    except ImportError:
        raise RltrainError(f"Minari datasets need the datasets extra: {INSTALL_HINT}.") from None
    return minari


def dataset_path(dataset_id: str) -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path(dataset_id))


def local_ids() -> list[str]:
    minari = import_minari()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(minari.list_local_datasets())


def check_id_format(dataset_id: str) -> None:
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise RltrainError(
            f"dataset id {dataset_id} is malformed; use <namespace>/<env>/<name>-v<k>, e.g. rltrain/cartpole/expert-v0."
        ) from None


# --- loading ----------------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """The transitions of a Minari dataset as flat tensors on the training device, episodes back to back."""

    id: str
    obs: torch.Tensor  # [N, *obs_shape] float32
    actions: torch.Tensor  # [N] long (Discrete) or [N, act_dim] float32 (Box)
    rewards: torch.Tensor  # [N]
    next_obs: torch.Tensor  # [N, *obs_shape]: observation t + 1 of the same episode, always the true one
    terminated: torch.Tensor  # [N] float: the episode really ended here (no bootstrap)
    truncated: torch.Tensor  # [N] float: the episode was cut here (time limit or collector budget)
    episode: torch.Tensor  # [N] long: index of the episode each transition belongs to
    episode_returns: torch.Tensor  # [E] undiscounted return of each episode
    episode_lengths: torch.Tensor  # [E]
    observation_space: gym.Space
    action_space: gym.Space
    env_spec: gym.envs.registration.EnvSpec | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    def sample(self, batch_size: int, transitions: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """A uniform batch of transitions, from all of them or from the `transitions` index; "index" says which
        (algorithms that keep per-transition quantities, such as AWR's returns, look them up with it)."""
        if transitions is None:
            index = torch.randint(0, len(self), (batch_size,), device=self.rewards.device)
        else:
            index = transitions[torch.randint(0, transitions.shape[0], (batch_size,), device=transitions.device)]
        return {
            "obs": self.obs[index],
            "actions": self.actions[index],
            "rewards": self.rewards[index],
            "next_obs": self.next_obs[index],
            "terminated": self.terminated[index],
            "truncated": self.truncated[index],
            "index": index,
        }

    def top_episodes(self, fraction: float) -> torch.Tensor:
        """Index of the transitions of the best `fraction` of episodes by return (at least one episode)."""
        keep = max(1, int(round(fraction * self.num_episodes)))
        best = torch.argsort(self.episode_returns, descending=True)[:keep]
        mask = torch.zeros(self.num_episodes, dtype=torch.bool, device=self.episode.device)
        mask[best] = True
        return torch.nonzero(mask[self.episode]).squeeze(-1)

    def normalized_score(self, episodic_return: float) -> float | None:
        """100 * (R - ref_min) / (ref_max - ref_min), the D4RL normalization; None without reference scores."""
        if self.ref_min_score is None or self.ref_max_score is None or self.ref_max_score == self.ref_min_score:
            return None
        return 100.0 * (episodic_return - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)


def unknown_id_message(dataset_id: str) -> str:
    ids = local_ids()
    root = dataset_path("")
    fetch = f"`minari download {dataset_id}` fetches one of Minari's public datasets"
    if not ids:
        return (
            f"dataset={dataset_id} is not in the Minari root {root}, which is empty; record one with rltrain-collect "
            f"({fetch})."
        )
    close = difflib.get_close_matches(dataset_id, ids, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"dataset={dataset_id} is not in the Minari root {root}.{hint} Local datasets: {', '.join(ids)} ({fetch})."


def unreadable(dataset_id: str, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"dataset={dataset_id} at {dataset_path(dataset_id)} is unreadable ({type(exc).__name__}: {reason}); "
        "record it again with rltrain-collect overwrite=true."
    )


def open_dataset(dataset_id: str):
    """The MinariDataset of a local id, or one sentence saying why it cannot be read."""
    minari = import_minari()
    check_id_format(dataset_id)
    path = dataset_path(dataset_id)
    if not (path / "data").is_dir():
        raise RltrainError(unknown_id_message(dataset_id))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = minari.load_dataset(dataset_id)
            total = data.total_episodes
    except Exception as exc:
        raise RltrainError(unreadable(dataset_id, exc)) from None
    if total == 0 or data.total_steps == 0:
        raise RltrainError(f"dataset={dataset_id} at {path} holds no episodes; record it again with rltrain-collect.")
    return data


def env_id_of(dataset_id: str) -> str | None:
    """The gymnasium id the dataset was recorded on (its env spec), or None when it has none."""
    data = open_dataset(dataset_id)
    return data.env_spec.id if data.env_spec is not None else None


def space_problem(what: str, ours: gym.Space, theirs: gym.Space) -> str | None:
    if type(ours) is not type(theirs) or (isinstance(ours, gym.spaces.Discrete) and ours.n != theirs.n):
        return f"its {what} space is {space_name(theirs)}, but the env's is {space_name(ours)}"
    if isinstance(ours, gym.spaces.Box) and ours.shape != theirs.shape:
        return f"its {what} space has shape {theirs.shape}, but the env's has {ours.shape}"
    return None


def step_of(batch, i: int):
    """Step i of one episode's observations as Minari returns them: an array, or a dict or tuple of them."""
    if isinstance(batch, dict):
        return {key: step_of(value, i) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(step_of(value, i) for value in batch)
    return batch[i]


def flat_observations(space: gym.Space, batch, count: int) -> np.ndarray:
    """One episode's observations in the rows gymnasium's flatten gives, as env.flatten_observation feeds them to
    the networks (Discrete parts one-hot)."""
    if isinstance(space, gym.spaces.Box):
        return np.asarray(batch, dtype=np.float32).reshape(count, -1)
    return np.stack([gym.spaces.flatten(space, step_of(batch, i)) for i in range(count)]).astype(np.float32)


def needs_flattening(theirs: gym.Space, ours: gym.Space) -> bool:
    """Whether the dataset's observations (`theirs`) are structured and the env's (`ours`) their flattened form."""
    if isinstance(theirs, gym.spaces.Box) and len(theirs.shape) == 1:
        return False
    return isinstance(ours, gym.spaces.Box) and ours.shape == (gym.spaces.flatdim(theirs),)


def load(
    dataset_id: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    env_id: str,
    device: torch.device,
) -> Dataset:
    """Read every episode of `dataset_id` once into preallocated tensors, after checking it fits the env."""
    data = open_dataset(dataset_id)
    spec = data.env_spec
    if spec is not None and spec.id != registered_name(env_id):
        raise RltrainError(
            f"dataset={dataset_id} was recorded on {spec.id}, but the env is {env_id}; "
            f"drop env= (the dataset's env is used) or pick a dataset of {env_id}."
        )
    flatten = needs_flattening(data.observation_space, observation_space)  # the run has env.flatten_observation
    for what, ours, theirs in (
        ("observation", observation_space, observation_space if flatten else data.observation_space),
        ("action", action_space, agent_action_space(data.action_space)),  # as the env's wrapper gives it to agents
    ):
        problem = space_problem(what, ours, theirs)
        if problem:
            names = [wrapper.name for wrapper in (spec.additional_wrappers if spec is not None else ())]
            through = f" (it was recorded through {', '.join(names)}: drop env= to get them)" if names else ""
            raise RltrainError(f"dataset={dataset_id} does not fit {env_id}: {problem}{through}.")
    if not isinstance(observation_space, gym.spaces.Box):
        raise RltrainError(
            f"dataset={dataset_id}: only Box observations can be loaded, not {observation_space}; add "
            "env.flatten_observation=true to load them as flat vectors."
        )

    steps, episodes = int(data.total_steps), int(data.total_episodes)
    discrete = isinstance(action_space, gym.spaces.Discrete)
    obs_shape = observation_space.shape
    act_shape = () if discrete else action_space.shape
    out = Dataset(
        id=dataset_id,
        obs=torch.zeros(steps, *obs_shape, device=device),
        actions=torch.zeros(steps, *act_shape, dtype=torch.long if discrete else torch.float32, device=device),
        rewards=torch.zeros(steps, device=device),
        next_obs=torch.zeros(steps, *obs_shape, device=device),
        terminated=torch.zeros(steps, device=device),
        truncated=torch.zeros(steps, device=device),
        episode=torch.zeros(steps, dtype=torch.long, device=device),
        episode_returns=torch.zeros(episodes, device=device),
        episode_lengths=torch.zeros(episodes, dtype=torch.long, device=device),
        observation_space=observation_space,
        action_space=action_space,
        env_spec=spec,
        ref_min_score=data.storage.metadata.get("ref_min_score"),
        ref_max_score=data.storage.metadata.get("ref_max_score"),
        metadata={k: v for k, v in data.storage.metadata.items() if isinstance(v, (str, int, float))},
    )
    start = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for e, episode in enumerate(data.iterate_episodes()):
                n = len(episode)
                if flatten:
                    observations = flat_observations(data.observation_space, episode.observations, n + 1)
                else:
                    observations = np.asarray(episode.observations, dtype=np.float32).reshape(n + 1, *obs_shape)
                rows = slice(start, start + n)
                out.obs[rows] = torch.as_tensor(observations[:-1])
                out.next_obs[rows] = torch.as_tensor(observations[1:])
                actions = agent_actions(data.action_space, np.asarray(episode.actions))  # the env's labels -> indices
                out.actions[rows] = torch.as_tensor(actions.reshape(n, *act_shape)).to(out.actions.dtype)
                out.rewards[rows] = torch.as_tensor(np.asarray(episode.rewards, dtype=np.float32))
                out.terminated[rows] = torch.as_tensor(np.asarray(episode.terminations, dtype=np.float32))
                out.truncated[rows] = torch.as_tensor(np.asarray(episode.truncations, dtype=np.float32))
                out.episode[rows] = e
                out.episode_returns[e] = float(np.sum(episode.rewards))
                out.episode_lengths[e] = n
                start += n
    except Exception as exc:
        raise RltrainError(unreadable(dataset_id, exc)) from None
    if start != steps:
        raise RltrainError(f"dataset={dataset_id} says it holds {steps} steps, but its episodes hold {start}.")
    return out


# --- recording ----------------------------------------------------------------------------------------------------
class RandomPolicy:
    """Uniform random actions for a batch of observations (the reference policy of ref_min_score)."""

    def __init__(self, action_space: gym.Space, seed: int):
        self.space = action_space
        self.space.seed(seed)

    def act(self, obs, explore: bool = True) -> np.ndarray:
        while isinstance(obs, (dict, tuple)):  # Dict or Tuple observations: their first part has the batch
            obs = next(iter(obs.values())) if isinstance(obs, dict) else obs[0]
        return np.stack([self.space.sample() for _ in range(len(obs))])


def as_numpy(actions) -> np.ndarray:
    return actions.cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)


class NoisyPolicy:
    """A policy's deterministic action plus exploration noise: epsilon-random for Discrete actions, Gaussian with
    std `noise * (high - low)` (clipped to the box) for Box actions."""

    def __init__(self, agent, spaces: tuple[gym.Space, gym.Space], noise: float, seed: int, device: torch.device):
        self.agent, self.noise, self.device = agent, float(noise), device
        self.observation_space, self.space = spaces
        self.rng = np.random.default_rng(seed)
        self.random = RandomPolicy(self.space, seed)

    def act(self, obs, explore: bool = False) -> np.ndarray:
        from rltrain.envs import as_observation

        actions = as_numpy(
            self.agent.act(as_observation(np.asarray(obs), self.observation_space, self.device), explore=False)
        )
        if self.noise <= 0:
            return actions
        if isinstance(self.space, gym.spaces.Discrete):
            flip = self.rng.random(len(actions)) < self.noise
            return np.where(flip, self.random.act(obs), actions)
        std = self.noise * (self.space.high - self.space.low)
        noisy = actions + self.rng.normal(size=actions.shape) * std
        return np.clip(noisy, self.space.low, self.space.high).astype(self.space.dtype)


def env_labels(env: gym.Env) -> tuple[Callable, Callable] | None:
    """The maps from the agent's actions and observations to the env's own, for an env that make_env wrapped in
    AgentSpaces (a Discrete space with a start, MultiDiscrete or MultiBinary actions); None for any other env."""
    return (env.env_action, env.env_observation) if isinstance(env, AgentSpaces) else None


def record_policy(policy, env: gym.Env, episodes: int | None, steps: int | None, seed: int) -> list:
    """Episodes of `policy` in `env` as Minari EpisodeBuffers: whole episodes until `episodes` of them, or until
    `steps` steps in all (the last episode is then cut there and marked truncated, not terminated)."""
    from minari.data_collector import EpisodeBuffer

    buffers, total = [], 0
    to_env, to_env_obs = env_labels(env) or (lambda action: action, lambda obs: obs)
    while (episodes is not None and len(buffers) < episodes) or (steps is not None and total < steps):
        episode_seed = seed + len(buffers)
        obs, _ = env.reset(seed=episode_seed)
        observations, actions, rewards, terminations, truncations = [to_env_obs(obs)], [], [], [], []
        while True:
            check_episode_length(len(actions), env.spec)
            action = policy.act([obs])[0]  # a batch of one; Dict, Tuple and Discrete observations included
            obs, reward, terminated, truncated, _ = env.step(action)
            total += 1
            cut = steps is not None and total >= steps
            observations.append(to_env_obs(obs))  # the dataset holds the env's own labels, as its spec says
            actions.append(to_env(action))
            rewards.append(float(reward))
            terminations.append(bool(terminated))
            truncations.append(bool(truncated or (cut and not terminated)))
            if terminated or truncations[-1]:
                break
        buffers.append(
            episode_buffer(EpisodeBuffer, episode_seed, observations, actions, rewards, terminations, truncations)
        )
    return buffers


def stack_steps(observations: list):
    """An episode's observations as Minari stores them: one array, or a dict or tuple of arrays for Dict and Tuple
    observation spaces."""
    first = observations[0]
    if isinstance(first, dict):
        return {key: stack_steps([o[key] for o in observations]) for key in first}
    if isinstance(first, tuple):
        return tuple(stack_steps([o[i] for o in observations]) for i in range(len(first)))
    return np.asarray(observations)


def episode_buffer(cls, seed, observations, actions, rewards, terminations, truncations):
    return cls(
        seed=seed,
        observations=stack_steps(observations),
        actions=np.asarray(actions),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terminations, dtype=bool),
        truncations=np.asarray(truncations, dtype=bool),
        infos={},
    )


def replay_episodes(replay: dict, num_envs: int, episodes: int | None, steps: int | None, env: gym.Env) -> list:
    """The transitions of a saved ReplayBuffer as episodes, oldest first, in `env`'s own labels. Entry i and entry
    i + num_envs are consecutive steps of the same env; an episode ends at an entry marked done (truncated when not
    terminated). A stretch still open at the end of the buffer is kept as an episode cut there (truncated)."""
    from minari.data_collector import EpisodeBuffer

    size = int(replay["size"])
    if size == 0:
        raise RltrainError("the checkpoint's replay buffer is empty.")
    capacity = int(replay["obs"].shape[0])
    oldest = int(replay["position"]) if size == capacity and size > 0 else 0
    # chronological order of the entries (a full circular buffer starts at `position`)
    order = (oldest + np.arange(size)) % capacity
    obs, next_obs = replay["obs"].numpy(), replay["next_obs"].numpy()
    actions, rewards = replay["actions"].numpy(), replay["rewards"].numpy()
    terminated, dones = replay["terminated"].numpy().astype(bool), replay["dones"].numpy().astype(bool)
    pieces: list[tuple[int, list[int]]] = []  # (chronological position of the first step, entries)
    for env_index in range(num_envs):
        current: list[int] = []
        for position in range(env_index, size, num_envs):
            entry = int(order[position])
            if not current:
                first = position
            current.append(entry)
            if dones[entry]:
                pieces.append((first, current))
                current = []
        if current:
            pieces.append((first, current))
    pieces.sort(key=lambda piece: piece[0])
    buffers, total = [], 0
    labels = env_labels(env)
    for _, entries in pieces:
        if (episodes is not None and len(buffers) >= episodes) or (steps is not None and total >= steps):
            break
        if steps is not None:
            entries = entries[: steps - total]
        total += len(entries)
        last = entries[-1]
        truncations = [bool(dones[i] and not terminated[i]) for i in entries]
        truncations[-1] = not terminated[last]  # a stretch cut by the buffer or the step budget ends truncated
        episode_obs, episode_actions = [*obs[entries], next_obs[last]], actions[entries]
        if labels is not None:  # the env's own labels, as the dataset's spec says
            episode_obs = [labels[1](o) for o in episode_obs]
            episode_actions = [labels[0](a) for a in episode_actions]
        buffers.append(
            episode_buffer(
                EpisodeBuffer,
                None,
                episode_obs,
                episode_actions,
                rewards[entries],
                terminated[entries],
                truncations,
            )
        )
    return buffers


def serializable_spec(spec):
    """`spec` with a callable entry point (gym.register(..., entry_point=MyEnv)) written as its "module:name":
    Minari stores env specs as JSON, which has no callables."""
    entry_point = getattr(spec, "entry_point", None)
    if entry_point is None or isinstance(entry_point, str):
        return spec
    return dataclasses.replace(spec, entry_point=f"{entry_point.__module__}:{entry_point.__qualname__}")


def write(
    dataset_id: str,
    buffers: list,
    env_spec,
    observation_space: gym.Space,
    action_space: gym.Space,
    algorithm_name: str,
    description: str,
    ref_min_score: float | None,
    ref_max_score: float | None,
    overwrite: bool,
):
    """Write the episodes as a Minari dataset (replacing an existing one only with overwrite)."""
    minari = import_minari()
    path = dataset_path(dataset_id)
    if path.exists():
        if not overwrite:
            raise RltrainError(f"dataset {dataset_id} already exists at {path}; pass overwrite=true to replace it.")
        with contextlib.redirect_stdout(io.StringIO()):  # Minari prints a line of its own
            minari.delete_dataset(dataset_id)
    env_spec = serializable_spec(env_spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env_spec,
            eval_env=env_spec,
            algorithm_name=algorithm_name,
            author="rltrain-collect",
            observation_space=observation_space,
            action_space=action_space,
            ref_min_score=ref_min_score if ref_max_score is not None else None,
            ref_max_score=ref_max_score,
            description=description,
        )
    if ref_min_score is not None and ref_max_score is None:  # Minari keeps a min score only together with a max
        data.storage.update_metadata({"ref_min_score": ref_min_score})
    return data


# --- what the Trainer and the CLI ask -------------------------------------------------------------------------
def for_run(config: dict, algorithm, device: torch.device) -> Dataset | None:
    """The dataset of a run (None when it has none), after checking the algorithm (an agent.Algorithm) has one when
    it needs one (agent.resolve_algorithm refused a dataset given to an algorithm that takes none)."""
    dataset_id = config.get("dataset")
    if dataset_id is None:
        if getattr(algorithm.cls, "needs_dataset", False):
            raise RltrainError(
                f"algo={config['algo']['name']} learns from a dataset: give dataset=<minari id> "
                "(record one with rltrain-collect; `minari list local` lists them)."
            )
        return None
    spaces = algorithm.observation_space, algorithm.action_space
    return load(str(dataset_id), *spaces, config["env"]["id"], device)


def recorded_env(dataset_id: str, env_dir: Path) -> tuple[gym.envs.registration.EnvSpec, Path | None]:
    """The env spec a run on the dataset evaluates on (the recorded env's, or its evaluation env's where that has
    the same id), and the shipped env preset (`env_dir/<name>.yaml`) of its gymnasium id, or None."""
    data = open_dataset(dataset_id)
    if data.env_spec is None:
        raise RltrainError(f"dataset={dataset_id} records no env spec; name the env it was recorded on with env=.")
    env_id = data.env_spec.id
    if env_id not in gym.registry:  # an env another package registers: which module does is not recorded
        entry_point = data.env_spec.entry_point
        where = f" (its entry point: {entry_point})" if isinstance(entry_point, str) else ""
        raise RltrainError(
            f"dataset={dataset_id} was recorded on {env_id}, which is not registered here{where}; add "
            f"env=gym env.id=<module>:{env_id} with the installed module that registers it."
        )
    from omegaconf import OmegaConf

    preset = next((path for path in sorted(env_dir.glob("*.yaml")) if OmegaConf.load(path).get("id") == env_id), None)
    return evaluation_spec(data) or data.env_spec, preset


def evaluation_spec(data) -> gym.envs.registration.EnvSpec | None:
    """The dataset's evaluation env (Minari's eval_env, on which it computed the reference scores) where it is the
    recorded env with other settings (a time limit, kwargs, wrappers), else None: the recorded env then serves."""
    text = data.storage.metadata.get("eval_env_spec")
    try:
        spec = gym.envs.registration.EnvSpec.from_json(text) if isinstance(text, str) else None
    except Exception:  # written by another gymnasium version: the recorded env serves
        return None
    return spec if spec is not None and spec.id == data.env_spec.id else None


def env_overrides(dataset_id: str, env_dir: Path) -> list[str]:
    """The env overrides that make a run use the env its dataset was recorded on: the shipped env preset with
    that gymnasium id (so its tuned presets apply), else env=gym env.id=<id>; then its recorded kwargs and wrappers."""
    spec, preset = recorded_env(dataset_id, env_dir)
    env = [f"env={preset.stem}"] if preset is not None else ["env=gym", f"env.id={spec.id}"]
    return env + kwarg_overrides(dataset_id, recorded_env_kwargs(spec)) + wrapper_overrides(dataset_id, spec)


def recorded_env_kwargs(spec: gym.envs.registration.EnvSpec) -> dict:
    """The keyword arguments (time limit included) the dataset's env was made with where they differ from the env
    registered under its id here, so evaluation runs the episodes the data came from."""
    registered = gym.spec(spec.id)
    kwargs = {
        key: value
        for key, value in (spec.kwargs or {}).items()
        if key != "render_mode" and (key not in registered.kwargs or registered.kwargs[key] != value)
    }
    if spec.max_episode_steps is not None and spec.max_episode_steps != registered.max_episode_steps:
        kwargs["max_episode_steps"] = spec.max_episode_steps
    return kwargs


def wrapper_overrides(dataset_id: str, spec: gym.envs.registration.EnvSpec) -> list[str]:
    """`++env.wrappers=[...]`: the gymnasium wrappers the dataset's env was recorded through (its spec's
    additional_wrappers), so the run's envs give the observations and actions the data holds."""
    recorded = []
    for wrapper in spec.additional_wrappers or ():
        if wrapper.kwargs is None:  # gymnasium records None for a wrapper whose arguments it cannot record
            raise RltrainError(
                f"dataset={dataset_id} was recorded through the wrapper {wrapper.name}, whose arguments were not "
                "recorded; name its env with env= and give env.wrappers yourself."
            )
        recorded.append({"entry_point": wrapper.entry_point, "kwargs": dict(wrapper.kwargs)})
    if not recorded:
        return []
    try:
        return [f"++env.wrappers={override_value(recorded)}"]
    except TypeError:
        raise RltrainError(
            f"dataset={dataset_id} was recorded through wrappers whose arguments a command line cannot give "
            f"({recorded}); name its env with env= and give env.wrappers in an env config of your own."
        ) from None


def override_value(value) -> str:
    """`value` as Hydra's override grammar reads it back (strings quoted, None as null, lists of such values)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # double-quoted, with backslash escapes, as Hydra's quoted strings
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    if isinstance(value, dict) and all(isinstance(key, str) and key.isidentifier() for key in value):
        return "{" + ",".join(f"{key}:{override_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(type(value).__name__)


def kwarg_overrides(dataset_id: str, kwargs: dict) -> list[str]:
    """`++env.kwargs.<key>=<value>` per keyword argument (++: set or add, so a preset's `kwargs: {}` takes it)."""
    overrides = []
    for key, value in kwargs.items():
        try:
            overrides.append(f"++env.kwargs.{key}={override_value(value)}")
        except TypeError:
            raise RltrainError(
                f"dataset={dataset_id} was recorded with the env keyword argument {key}={value!r}, which a command "
                f"line cannot give; name its env with env= and set {key} in an env config of your own."
            ) from None
    return overrides
