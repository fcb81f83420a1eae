"""Model predictive control with a learned probabilistic ensemble (PETS: Chua et al., 2018).

Model:    for members e = 1..E,  (mu_e, log var_e) = f_e(norm(s, a)),  the Gaussian of norm(s' - s)
          log var is kept in [min_logvar, max_logvar] by softplus, both bounds learned (PETS, appendix A.1):
              log var <- max - softplus(max - log var);  log var <- min + softplus(log var - min)
          L_f = sum_e E[(mu_e - y)^2 * exp(-log var_e) + log var_e] + 0.01 * (sum max - sum min)
Reward:   r_hat = g(norm(s, a, s')),  L_g = E[(r_hat - norm(r))^2]
Ends:     p_end = sigmoid(h(norm(s, a, s'))),  L_h = E[BCE(p_end, terminated)]: learned (and used) only once the data
          holds a terminated transition, so envs that end only at a time limit plan exactly as without it
Fitting:  every train_every env steps on ALL real data (update() takes the whole replay buffer): a held-out split,
          epochs of minibatches until the held-out error (MSEs, + BCE of the ends) has not improved for `patience`
          epochs; the best weights win.
Planning: R(a_1..a_H) = mean over particles of sum_t alive_t r_hat(s_t, a_t, s_t+1), s_t+1 ~ N(mu_e, var_e) sampled,
          alive_1 = 1, alive_t+1 = alive_t (1 - p_end(s_t, a_t, s_t+1)): nothing is earned after a predicted end
          (trajectory sampling TS-inf: particle p stays with member p mod E for the whole horizon), maximized by the
          planner (planners.py: cem, mppi, random), warm-started from the previous plan shifted by one step.
act(explore=True) adds Gaussian noise of explore_noise (a fraction of the action half-range) to the planned
action; explore=False is the planner alone.
Actions live in [-1, 1] inside the agent and are scaled to the env's box at the boundary.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rltrain.networks import EnsembleLinear, box_center_and_half_range
from rltrain.planners import make_planner


class EnsembleMLP(nn.Module):
    """`members` MLPs with SiLU (swish, as PETS) in batched matmuls: x [E, B, in] -> [E, B, out]."""

    def __init__(self, members: int, in_dim: int, out_dim: int, hidden: list[int]):
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(EnsembleLinear(members, a, b))
            if i < len(sizes) - 2:
                layers.append(nn.SiLU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Normalizer(nn.Module):
    """x -> (x - mean) / std with mean and std fitted on the data (buffers: saved in state_dict)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, unbiased=False).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class Models(nn.Module):
    """The dynamics ensemble, the reward and termination models and their normalizers: everything planning reads."""

    def __init__(self, obs_dim: int, act_dim: int, ensemble: int, hidden: list[int]):
        super().__init__()
        self.obs_dim, self.ensemble = obs_dim, ensemble
        self.dynamics = EnsembleMLP(ensemble, obs_dim + act_dim, 2 * obs_dim, hidden)
        self.max_logvar = nn.Parameter(torch.full((obs_dim,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((obs_dim,), -10.0))
        self.reward = EnsembleMLP(1, 2 * obs_dim + act_dim, 1, hidden)
        self.input_norm = Normalizer(obs_dim + act_dim)
        self.delta_norm = Normalizer(obs_dim)
        self.reward_input_norm = Normalizer(2 * obs_dim + act_dim)
        self.reward_norm = Normalizer(1)
        # Made on a forked RNG so that the other models' initial weights, and everything after, are the same as
        # without it: a run on an env that never terminates is bit-identical whether or not this model exists.
        with torch.random.fork_rng(devices=[]):
            self.termination = EnsembleMLP(1, 2 * obs_dim + act_dim, 1, hidden)  # logit of P(terminated | s, a, s')
        self.register_buffer("learns_terminations", torch.zeros((), dtype=torch.bool))  # set by the first end seen

    def dynamics_stats(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and bounded log-variance of the normalized delta, [E, B, obs_dim] each, for inputs [E, B, .]."""
        mean, logvar = self.dynamics(self.input_norm(torch.cat([obs, actions], -1))).chunk(2, dim=-1)
        logvar = self.max_logvar - nn.functional.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + nn.functional.softplus(logvar - self.min_logvar)
        return mean, logvar

    def predict_reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Normalized reward predictions [..., 1] for inputs of any leading shape."""
        x = self.reward_input_norm(torch.cat([obs, actions, next_obs], -1))
        return self.reward(x.reshape(1, -1, x.shape[-1])).reshape(*x.shape[:-1], 1)

    def termination_logits(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Logits of P(terminated) [...] for inputs of any leading shape (the reward model's normalized inputs)."""
        x = self.reward_input_norm(torch.cat([obs, actions, next_obs], -1))
        return self.termination(x.reshape(1, -1, x.shape[-1])).reshape(x.shape[:-1])

    @torch.no_grad()
    def step(
        self, obs: torch.Tensor, actions: torch.Tensor, ends: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Sampled next states [E, M, obs_dim], rewards [E, M] and, with `ends` (terminations learned), the
        probability [E, M] that the episode goes on (else None), of member e's particles, inputs [E, M, .]."""
        mean, logvar = self.dynamics_stats(obs, actions)
        delta = self.delta_norm.inverse(mean + (0.5 * logvar).exp() * torch.randn_like(mean))
        next_obs = obs + delta
        rewards = self.reward_norm.inverse(self.predict_reward(obs, actions, next_obs)).squeeze(-1)
        if not ends:
            return next_obs, rewards, None
        return next_obs, rewards, torch.sigmoid(-self.termination_logits(obs, actions, next_obs))


class MPC:
    kind = "planning"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Box,)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        ensemble: int = 5,
        hidden: tuple[int, ...] = (200, 200, 200),
        lr: float = 1e-3,
        weight_decay: float = 5e-5,
        batch_size: int = 256,
        holdout: float = 0.1,
        max_epochs: int = 50,
        patience: int = 5,
        buffer_size: int = 1_000_000,
        learning_starts: int = 200,
        train_every: int = 200,
        planner: str = "cem",
        horizon: int = 25,
        particles: int = 20,
        population: int = 400,
        elites: int = 40,
        iterations: int = 5,
        alpha: float = 0.1,
        init_std: float = 0.5,
        temperature: float = 1.0,
        noise_std: float = 0.5,
        explore_noise: float = 0.0,
    ):
        if particles % ensemble:
            from rltrain.errors import RltrainError

            raise RltrainError(f"algo.particles={particles} must be a multiple of algo.ensemble={ensemble}.")
        self.device = device
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(action_space.shape[0])
        self.models = Models(self.obs_dim, self.act_dim, ensemble, list(hidden)).to(device)
        self.optimizer = torch.optim.AdamW(self.models.parameters(), lr=lr, weight_decay=weight_decay)
        self.action_center, self.action_half_range = box_center_and_half_range(action_space, device)
        self.low = -torch.ones(self.act_dim, device=device)
        self.high = torch.ones(self.act_dim, device=device)
        self.planner = make_planner(planner, population, elites, iterations, alpha, init_std, temperature, noise_std)
        self.horizon, self.particles, self.explore_noise = horizon, particles, explore_noise
        self.batch_size, self.holdout, self.max_epochs, self.patience = batch_size, holdout, max_epochs, patience
        # replay schedule, read by the planning loop
        self.buffer_size, self.learning_starts, self.train_every = buffer_size, learning_starts, train_every
        self.plans: dict[bool, torch.Tensor] = {}  # the last plan of acting with explore=True / False
        self.fits = 0

    # --- planning -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def returns(self, obs: torch.Tensor, action_sequences: torch.Tensor) -> torch.Tensor:
        """Predicted returns [B, N] of action sequences [B, N, H, A] from observations [B, obs_dim]: particles of
        every candidate rolled through the ensemble together, as [E, B * N * particles / E] rows."""
        batch, candidates, horizon, act_dim = action_sequences.shape
        members, per_member = self.models.ensemble, self.particles // self.models.ensemble
        rows = batch * candidates * per_member
        state = obs[None, :, None, None, :].expand(members, batch, candidates, per_member, self.obs_dim)
        state = state.reshape(members, rows, self.obs_dim)
        total = torch.zeros(members, rows, device=obs.device)
        alive = torch.ones(members, rows, device=obs.device)
        ends = bool(self.models.learns_terminations)  # read once: a GPU sync per call, not per step
        for t in range(horizon):
            action = action_sequences[None, :, :, None, t].expand(members, batch, candidates, per_member, act_dim)
            state, reward, goes_on = self.models.step(state, action.reshape(members, rows, act_dim), ends)
            if goes_on is None:
                total += reward
            else:  # the step that ends an episode still pays its reward; the ones after it do not
                total += alive * reward
                alive = alive * goes_on
        return total.reshape(members, batch, candidates, per_member).mean((0, 3))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(-1, self.obs_dim)
        previous = self.plans.get(explore)
        if previous is None or previous.shape[0] != obs.shape[0]:
            start = torch.zeros(obs.shape[0], self.horizon, self.act_dim, device=self.device)
        else:  # warm start: the previous plan shifted by one step, its last action repeated
            start = torch.cat([previous[:, 1:], previous[:, -1:]], dim=1)
        plan = self.planner(lambda sequences: self.returns(obs, sequences), start, self.low, self.high)
        self.plans[explore] = plan
        action = plan[:, 0]
        if explore and self.explore_noise > 0:
            action = (action + self.explore_noise * torch.randn_like(action)).clamp(-1.0, 1.0)
        return self.action_center + self.action_half_range * action

    # --- model fitting ------------------------------------------------------------------------------------
    def dynamics_loss(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Gaussian NLL of the normalized deltas, summed over members, plus the log-variance bound penalty.
        `inputs` holds obs, actions, targets [E, B, .] (targets: normalized deltas)."""
        mean, logvar = self.models.dynamics_stats(inputs["obs"], inputs["actions"])
        nll = ((mean - inputs["targets"]).square() * (-logvar).exp() + logvar).mean((1, 2)).sum()
        bounds = 0.01 * (self.models.max_logvar.sum() - self.models.min_logvar.sum())
        mse = (mean - inputs["targets"]).square().mean()
        return nll + bounds, {"model_nll": nll.detach(), "model_mse": mse.detach()}

    def reward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE of the normalized reward of (s, a, s')."""
        prediction = self.models.predict_reward(batch["obs"], batch["actions"], batch["next_obs"]).squeeze(-1)
        loss = (prediction - self.models.reward_norm(batch["rewards"][:, None]).squeeze(-1)).square().mean()
        return loss, {"reward_mse": loss.detach()}

    def termination_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Binary cross-entropy of P(terminated | s, a, s') against the env's terminations (time limits are not)."""
        logits = self.models.termination_logits(batch["obs"], batch["actions"], batch["next_obs"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["terminated"])
        return loss, {"termination_bce": loss.detach()}

    @torch.no_grad()
    def heldout_errors(self, data: dict[str, torch.Tensor]) -> tuple[float, float, float]:
        """Held-out MSE of the normalized delta (mean over members), of the normalized reward, and the termination
        cross-entropy (0 while terminations are not learned)."""
        members = self.models.ensemble
        mean, _ = self.models.dynamics_stats(
            data["obs"].expand(members, -1, -1), data["actions"].expand(members, -1, -1)
        )
        targets = self.models.delta_norm(data["next_obs"] - data["obs"])
        _, info = self.reward_loss(data)
        termination = float(self.termination_loss(data)[0]) if self.models.learns_terminations else 0.0
        return float((mean - targets).square().mean()), float(info["reward_mse"]), termination

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Fit the ensemble, the reward model and (once an episode has terminated) the termination model on all of
        `batch` (every real transition so far): normalizers refitted, a held-out split, epochs until the held-out
        error stops improving; the best weights are kept."""
        data = {k: batch[k].float() for k in ("obs", "actions", "rewards", "next_obs")}
        data["terminated"] = batch["terminated"].float() if "terminated" in batch else torch.zeros_like(data["rewards"])
        data["actions"] = (data["actions"] - self.action_center) / self.action_half_range
        n = len(data["obs"])
        order = torch.randperm(n, device=self.device)
        held = min(max(int(self.holdout * n), 1), n - 1) if n > 1 else 0
        heldout = {k: v[order[:held]] for k, v in data.items()} if held else {k: v for k, v in data.items()}
        train = {k: v[order[held:]] for k, v in data.items()}
        models = self.models
        if bool(data["terminated"].any()):
            models.learns_terminations.fill_(True)
        models.input_norm.fit(torch.cat([train["obs"], train["actions"]], -1))
        models.delta_norm.fit(train["next_obs"] - train["obs"])
        models.reward_input_norm.fit(torch.cat([train["obs"], train["actions"], train["next_obs"]], -1))
        models.reward_norm.fit(train["rewards"][:, None])
        targets = models.delta_norm(train["next_obs"] - train["obs"])

        members, size = models.ensemble, len(train["obs"])
        batches = max(size // self.batch_size, 1)
        best, best_state, stale, epochs, info = float("inf"), None, 0, 0, {}
        best_errors = (float("nan"),) * 3  # stays NaN (and is reported) if the fit diverges
        while epochs < self.max_epochs and stale < self.patience:
            # each member sees its own shuffle of the training data
            shuffles = torch.argsort(torch.rand(members, size, device=self.device), dim=1)
            for i in range(batches):
                index = shuffles[:, i * self.batch_size : (i + 1) * self.batch_size]  # [E, b]
                dynamics, info = self.dynamics_loss(
                    {"obs": train["obs"][index], "actions": train["actions"][index], "targets": targets[index]}
                )
                minibatch = {k: v[index[0]] for k, v in train.items()}
                reward, reward_info = self.reward_loss(minibatch)
                loss = dynamics + reward
                info.update(reward_info)
                if models.learns_terminations:
                    termination, termination_info = self.termination_loss(minibatch)
                    loss = loss + termination
                    info.update(termination_info)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            epochs += 1
            errors = self.heldout_errors(heldout)
            if sum(errors) < best - 1e-4:
                best, stale = sum(errors), 0
                best_state = copy.deepcopy(models.state_dict())
                best_errors = errors
            else:
                stale += 1
        if best_state is not None:
            models.load_state_dict(best_state)
        self.fits += 1
        metrics = {
            **{k: float(v) for k, v in info.items()},
            "heldout_model_mse": best_errors[0],
            "heldout_reward_mse": best_errors[1],
            "model_epochs": float(epochs),
            "model_transitions": float(n),
        }
        if models.learns_terminations:
            metrics["heldout_termination_bce"] = best_errors[2]
        return metrics

    # --- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "models": self.models.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plans": {str(k): v.clone() for k, v in self.plans.items()},
            "fits": self.fits,
        }

    def load_state_dict(self, state: dict) -> None:
        optimizer_state = state["optimizer"]
        if "learns_terminations" not in state["models"]:  # saved before the termination model existed: it starts
            models = {**self.models.state_dict(), **state["models"]}  # untrained, as on an env that never ended
            models["learns_terminations"].fill_(False)
            # its parameters were registered last, so the saved ones keep their indices in the param group
            groups = [
                {**group, "params": list(range(len(self.optimizer.param_groups[0]["params"])))}
                for group in optimizer_state["param_groups"]
            ]
            optimizer_state = {**optimizer_state, "param_groups": groups}
            state = {**state, "models": models}
        self.models.load_state_dict(state["models"])
        self.optimizer.load_state_dict(optimizer_state)
        self.plans = {k == "True": v.to(self.device) for k, v in state["plans"].items()}
        self.fits = int(state["fits"])
