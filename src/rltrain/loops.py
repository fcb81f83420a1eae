"""One plain function per kind of training, and the loop table. Loops own env stepping and buffers; agents own
the math.

Each loop steps `trainer.envs` (or `trainer.env`), feeds `trainer.agent`, and calls `trainer.advance(steps,
metrics)` after every step; advance() handles logging, evaluation, checkpoints and Ctrl-C, and says whether to go
on. What a loop reads of its agent is the Protocol of its kind in agent.py; what it needs from the Trainer is its
entry in LOOPS below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rltrain.buffers import EpisodeBuffer, RolloutBuffer
from rltrain.envs import final_observations


def truncation_bootstrap(agent, next_obs, infos, terminated, truncated, device) -> torch.Tensor | None:
    """gamma * V(true final obs) for envs whose episode hit its time limit (zero for the others), or None when
    none did: a time limit is not a real end, so the return the agent learns from goes on past it."""
    only_truncated = truncated & ~terminated
    if not only_truncated.any():
        return None
    final = final_observations(next_obs, infos)[only_truncated]
    bootstrap = torch.zeros(len(truncated), dtype=torch.float32, device=device)
    bootstrap[torch.as_tensor(only_truncated, device=device)] = agent.gamma * agent.value(
        torch.as_tensor(final, dtype=torch.float32, device=device)
    )
    return bootstrap


def onpolicy(trainer) -> None:
    """Collect rollout_steps x num_envs transitions, compute GAE, update; repeat."""
    agent, envs, device = trainer.agent, trainer.envs, trainer.device
    num_envs = envs.num_envs
    discrete = trainer.action_space_is_discrete
    action_shape = () if discrete else envs.single_action_space.shape
    rollout = RolloutBuffer(
        agent.rollout_steps,
        num_envs,
        envs.single_observation_space.shape,
        action_shape,
        torch.long if discrete else torch.float32,
        device,
    )
    obs = trainer.reset_envs()
    running = True
    while running:
        for t in range(agent.rollout_steps):
            step = agent.policy_step(obs)
            next_obs, rewards, terminated, truncated, infos = envs.step(step["env_action"].cpu().numpy())
            trainer.record_episodes(infos)
            dones = terminated | truncated
            rewards_t = agent.scale_rewards(
                torch.as_tensor(rewards, dtype=torch.float32, device=device), torch.as_tensor(dones, device=device)
            )
            bootstrap = truncation_bootstrap(agent, next_obs, infos, terminated, truncated, device)
            if bootstrap is not None:
                rewards_t += bootstrap
            rollout.obs[t] = step["obs"]
            rollout.actions[t] = step["action"]
            rollout.log_probs[t] = step["log_prob"]
            rollout.values[t] = step["value"]
            rollout.rewards[t] = rewards_t
            rollout.dones[t] = torch.as_tensor(dones, dtype=torch.float32, device=device)
            rollout.terminated[t] = torch.as_tensor(terminated, dtype=torch.float32, device=device)
            obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
            running = trainer.advance(num_envs, None)
            if not running and t < agent.rollout_steps - 1:
                return  # stopped mid-rollout (Ctrl-C or the step budget): an incomplete rollout is not trained on
        agent.relabel_rewards(rollout)  # a no-op, except for imitation (GAIL): a learned reward, before GAE
        trainer.report(agent.update(rollout.batch(agent.value(obs), agent.gamma, agent.gae_lambda)))


def episodic(trainer) -> None:
    """Monte-Carlo: play whole episodes; once episodes_per_update of them have ended, learn from their returns.
    Episodes still running at an update carry on under the new policy."""
    agent, envs, device = trainer.agent, trainer.envs, trainer.device
    episodes = EpisodeBuffer(envs.num_envs)
    obs = trainer.reset_envs()
    running = trainer.step < trainer.total_steps
    while running:
        step = agent.policy_step(obs)
        next_obs, rewards, terminated, truncated, infos = envs.step(step["env_action"].cpu().numpy())
        trainer.record_episodes(infos)
        rewards = rewards.astype(np.float32)
        bootstrap = truncation_bootstrap(agent, next_obs, infos, terminated, truncated, device)
        if bootstrap is not None:
            rewards += bootstrap.cpu().numpy()
        episodes.add(step["obs"].cpu().numpy(), step["action"].cpu().numpy(), rewards, terminated | truncated)
        obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
        running = trainer.advance(envs.num_envs, None)
        if running and len(episodes.finished) >= agent.episodes_per_update:
            trainer.report(agent.update(episodes.batch(agent.gamma, device)))


def offpolicy(trainer) -> None:
    """Step the envs, store transitions in replay, and every train_every steps take gradient_steps updates."""
    agent, envs, device, replay = trainer.agent, trainer.envs, trainer.device, trainer.replay
    num_envs = envs.num_envs
    obs = trainer.reset_envs()
    warmup_until = trainer.step + agent.learning_starts  # resumed runs without a saved buffer refill first
    if replay.size >= agent.learning_starts:
        warmup_until = trainer.step
    # gradient_steps updates per train_every env steps, whatever num_envs is (8 envs with train_every 1 make 8
    # rounds per vector step); a fresh run's first round comes as soon as its warm-up ends
    first_round_pending = trainer.step < warmup_until
    steps_since_update = 0
    running = trainer.step < trainer.total_steps
    while running:
        if trainer.step < warmup_until:
            actions = torch.as_tensor(envs.action_space.sample(), device=device)
        else:
            actions = agent.act(obs, explore=True)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions.cpu().numpy())
        trainer.record_episodes(infos)
        real_next_obs = final_observations(next_obs, infos)
        replay.add(
            obs,
            actions,
            torch.as_tensor(rewards, dtype=torch.float32, device=device),
            torch.as_tensor(real_next_obs, dtype=torch.float32, device=device),
            torch.as_tensor(terminated, dtype=torch.float32, device=device),
            torch.as_tensor(terminated | truncated, device=device),
        )
        obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
        metrics = None
        if trainer.step + num_envs >= warmup_until:
            steps_since_update = agent.train_every if first_round_pending else steps_since_update + num_envs
            first_round_pending = False
            rounds, steps_since_update = divmod(steps_since_update, agent.train_every)
            for _ in range(rounds * agent.gradient_steps):
                metrics = agent.update(replay.sample(agent.batch_size, agent.n_step, agent.gamma))
        running = trainer.advance(num_envs, metrics)


def tabular(trainer) -> None:
    """One env, one transition at a time: act epsilon-greedily, update, and choose the next action first
    (SARSA learns from the action it will actually take)."""
    agent, env = trainer.agent, trainer.env
    state, _ = env.reset(seed=int(trainer.config["seed"]) + trainer.step)
    action = agent.choose(state, True)
    episode_return, episode_length = 0.0, 0
    running = trainer.step < trainer.total_steps
    while running:
        next_state, reward, terminated, truncated, _ = env.step(action)
        next_action = agent.choose(next_state, True)
        agent.update(
            {
                "obs": state,
                "actions": action,
                "rewards": reward,
                "next_obs": next_state,
                "terminated": terminated,
                "next_actions": next_action,
            }
        )
        episode_return += reward
        episode_length += 1
        if terminated or truncated:
            trainer.record_episode(episode_return, episode_length)
            episode_return, episode_length = 0.0, 0
            next_state, _ = env.reset()
            next_action = agent.choose(next_state, True)
        state, action = next_state, next_action
        running = trainer.advance(1, None)


def bandit(trainer) -> None:
    """Pull one arm per step; log reward, cumulative regret and the fraction of optimal pulls every step."""
    agent, env = trainer.agent, trainer.env
    probabilities = env.unwrapped.probabilities
    best, optimal_arm = probabilities.max(), env.unwrapped.optimal_arm
    state = trainer.loop_state
    state.setdefault("cumulative_regret", 0.0)
    state.setdefault("optimal_pulls", 0)
    env.reset(seed=int(trainer.config["seed"]) + trainer.step)
    observation = np.zeros(1, dtype=np.int64)
    running = trainer.step < trainer.total_steps
    while running:
        arm = int(agent.act(observation, explore=True)[0])
        _, reward, *_ = env.step(arm)
        env.reset()
        metrics = agent.update({"actions": arm, "rewards": reward})
        state["cumulative_regret"] += float(best - probabilities[arm])
        state["optimal_pulls"] += int(arm == optimal_arm)
        pulls = trainer.step + 1
        state["optimal_arm_fraction"] = state["optimal_pulls"] / pulls
        trainer.logger.scalars(
            pulls,
            {
                "reward": reward,
                "cumulative_regret": state["cumulative_regret"],
                "optimal_arm_fraction": state["optimal_arm_fraction"],
            },
            "charts",
        )
        running = trainer.advance(1, metrics or None)


def dynamic_programming(trainer) -> None:
    """Dynamic programming on the env's transition table; the step axis of its curves is the sweep."""
    delta = float("nan")
    for sweep, delta in enumerate(trainer.agent.plan(trainer.env.unwrapped.P), start=1):
        trainer.logger.scalars(sweep, {"delta_v": delta}, "losses")
        trainer.loop_state["sweeps"] = sweep
    trainer.logger.message(f"{trainer.loop_state.get('sweeps', 0)} sweeps; the last changed V by {delta:.2e} at most")


def offline(trainer) -> None:
    """Gradient updates on minibatches of the dataset, no env steps; the step axis counts updates."""
    agent, dataset = trainer.agent, trainer.dataset
    running = trainer.step < trainer.total_steps
    while running:
        metrics = agent.update(dataset.sample(agent.batch_size, agent.transitions))
        running = trainer.advance(1, metrics)


def planning(trainer) -> None:
    """Model-based planning (MPC): step one env with the agent's planner, store every transition in replay, and
    every train_every env steps refit the agent's model on all of them; uniformly random actions until
    learning_starts."""
    agent, env, device, replay = trainer.agent, trainer.env, trainer.device, trainer.replay
    seed = int(trainer.config["seed"]) + trainer.step
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    warmup_until = trainer.step + agent.learning_starts  # resumed runs without a saved buffer refill first
    if replay.size >= agent.learning_starts:
        warmup_until = trainer.step
    steps_since_fit = 0
    episode_return, episode_length = 0.0, 0
    running = trainer.step < trainer.total_steps
    while running:
        if trainer.step < warmup_until:
            action = torch.as_tensor(env.action_space.sample(), dtype=torch.float32, device=device)
        else:
            action = agent.act(obs.unsqueeze(0), explore=True)[0]
        next_obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
        next_obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
        replay.add(
            obs.unsqueeze(0),
            action.unsqueeze(0),
            torch.tensor([reward], dtype=torch.float32, device=device),
            next_obs.unsqueeze(0),
            torch.tensor([float(terminated)], device=device),
            torch.tensor([terminated or truncated], device=device),
        )
        episode_return += float(reward)
        episode_length += 1
        if terminated or truncated:
            trainer.record_episode(episode_return, episode_length)
            episode_return, episode_length = 0.0, 0
            obs_np, _ = env.reset()
            next_obs = torch.as_tensor(obs_np, dtype=torch.float32, device=device)
        obs = next_obs
        metrics = None
        steps_since_fit += 1
        if trainer.step + 1 >= warmup_until and steps_since_fit >= agent.train_every:
            steps_since_fit = 0
            metrics = agent.update(replay.contents())
        running = trainer.advance(1, metrics)


@dataclass(frozen=True)
class Loop:
    """What a kind of training needs from the Trainer; the Trainer reads its entry once and builds just that."""

    run: Callable  # the loop itself: run(trainer)
    env: str  # "vector": trainer.envs (num_envs of them); "single": one plain trainer.env; "eval_only": neither
    replay: bool = False  # the Trainer makes trainer.replay, a ReplayBuffer of min(agent.buffer_size, total_steps)
    step_unit: str = "env steps"  # what the step axis of its curves counts: env steps, updates or sweeps
    uses_step_budget: bool = True  # False: the loop runs to its own end (convergence), whatever total_steps says


# A new kind is one function and one row here, and its Protocol in agent.PROTOCOLS.
LOOPS = {
    "onpolicy": Loop(onpolicy, env="vector"),
    "episodic": Loop(episodic, env="vector"),
    "offpolicy": Loop(offpolicy, env="vector", replay=True),
    "tabular": Loop(tabular, env="single"),
    "bandit": Loop(bandit, env="single"),
    "dynamic_programming": Loop(dynamic_programming, env="single", step_unit="sweeps", uses_step_budget=False),
    "offline": Loop(offline, env="eval_only", step_unit="updates"),  # learns from trainer.dataset
    "planning": Loop(planning, env="single", replay=True),  # MPC: refits its model on all of trainer.replay
}
