"""Trust Region Policy Optimization (Schulman et al., 2015).

Maximize the surrogate  L(theta) = E[pi_theta(a|s) / pi_old(a|s) * A]  subject to  KL(pi_old || pi_theta) <= delta:
  1. g = grad L at theta_old;
  2. x = F^-1 g by conjugate gradient, where F is the Fisher matrix, applied as a Hessian-vector product of the
     mean KL (never formed), plus damping * v for stability;
  3. the largest step on the quadratic model of the constraint: theta_old + beta x, beta = sqrt(2 delta / x^T F x);
  4. backtrack (beta *= shrink) until the actual KL <= delta and the surrogate improved; else keep theta_old.
The value function is fitted separately, by Adam on (V - R)^2 for value_epochs passes over minibatches.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import torch
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from rltrain.networks import adam
from rltrain.policies import ActorCritic, explained_variance, fit_value


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int, tolerance: float = 1e-10
) -> torch.Tensor:
    """Solve A x = b for a symmetric positive definite A known only through x -> A x."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iterations):
        a_direction = matvec(direction)
        step = residual_sq / (direction @ a_direction)
        x += step * direction
        residual -= step * a_direction
        new_residual_sq = residual @ residual
        if new_residual_sq < tolerance:
            break
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


class TRPO:
    kind = "onpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        num_envs: int,
        rollout_steps: int = 1024,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        max_kl: float = 0.01,
        cg_iterations: int = 15,
        cg_damping: float = 0.1,
        line_search_steps: int = 10,
        line_search_shrink: float = 0.8,
        value_lr: float = 1e-3,
        value_epochs: int = 10,
        value_minibatch: int = 128,
        normalize_advantages: bool = True,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        init_log_std: float = 0.0,
    ):
        self.device = device
        self.policy = ActorCritic(
            observation_space,
            action_space,
            network,
            device,
            num_envs,
            gamma,
            normalize_obs=normalize_obs,
            normalize_reward=normalize_reward,
            init_log_std=init_log_std,
        )
        self.policy_params = self.policy.policy_parameters()
        self.value_optimizer = adam(self.policy.critic.parameters(), value_lr)
        self.rollout_steps, self.gamma, self.gae_lambda = rollout_steps, gamma, gae_lambda
        self.max_kl, self.cg_iterations, self.cg_damping = max_kl, cg_iterations, cg_damping
        self.line_search_steps, self.line_search_shrink = line_search_steps, line_search_shrink
        self.value_epochs, self.value_minibatch = value_epochs, value_minibatch
        self.normalize_advantages = normalize_advantages
        self.updates_done = 0

    # --- acting, rollouts and bootstrapping: the shared policy's (OnPolicyAgent in agent.py) ------------------
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.policy.act(obs, explore)

    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.policy.policy_step(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.value(obs)

    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        return self.policy.scale_rewards(rewards, dones)

    def relabel_rewards(self, rollout) -> None:
        """Nothing to do: the rollout learns from the env's (scaled) rewards."""

    def surrogate(self, batch: dict[str, torch.Tensor], advantages: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The surrogate objective L(theta) that the trust-region step maximizes, and its (empty) info."""
        log_prob, _ = self.policy.log_prob_and_entropy(batch["obs"], batch["actions"])
        return ((log_prob - batch["log_probs"]).exp() * advantages).mean(), {}

    def mean_kl(self, obs: torch.Tensor, old_distribution) -> torch.Tensor:
        kl = kl_divergence(old_distribution, self.policy.distribution(obs))
        return kl.mean() if self.policy.discrete else kl.sum(-1).mean()

    def fisher_vector_product(self, obs: torch.Tensor, old_distribution) -> Callable[[torch.Tensor], torch.Tensor]:
        """v -> (F + damping I) v, with F the Hessian of the mean KL at theta_old."""
        kl_grad = torch.autograd.grad(self.mean_kl(obs, old_distribution), self.policy_params, create_graph=True)
        kl_grad = torch.cat([g.reshape(-1) for g in kl_grad])

        def product(v: torch.Tensor) -> torch.Tensor:
            hessian_v = torch.autograd.grad(kl_grad @ v, self.policy_params, retain_graph=True)
            return torch.cat([h.reshape(-1) for h in hessian_v]) + self.cg_damping * v

        return product

    def natural_gradient_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        advantages = batch["advantages"]
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        obs = batch["obs"]
        with torch.no_grad():
            old_distribution = self.policy.distribution(obs)
        objective, _ = self.surrogate(batch, advantages)
        gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(objective, self.policy_params)])
        fvp = self.fisher_vector_product(obs, old_distribution)
        direction = conjugate_gradient(fvp, gradient, self.cg_iterations)
        curvature = direction @ fvp(direction)
        max_step = torch.sqrt(2 * self.max_kl / curvature.clamp_min(1e-12))

        old_params = parameters_to_vector(self.policy_params).detach()
        old_objective = objective.detach()
        step_size, accepted, kl, new_objective = float(max_step), False, torch.zeros(()), old_objective
        with torch.no_grad():
            for _ in range(self.line_search_steps):
                vector_to_parameters(old_params + step_size * direction, self.policy_params)
                kl = self.mean_kl(obs, old_distribution)
                new_objective, _ = self.surrogate(batch, advantages)
                if kl <= self.max_kl and new_objective > old_objective:
                    accepted = True
                    break
                step_size *= self.line_search_shrink
            if not accepted:  # no step satisfied the trust region: keep the old policy
                vector_to_parameters(old_params, self.policy_params)
                kl, new_objective = torch.zeros(()), old_objective
        return {
            "surrogate_improvement": float(new_objective - old_objective),
            "kl": float(kl),
            "step_size": step_size if accepted else 0.0,
            "line_search_accepted": float(accepted),
        }

    def fit_value(self, batch: dict[str, torch.Tensor]) -> float:
        loss = fit_value(
            self.policy.critic,
            self.value_optimizer,
            batch["obs"],
            batch["returns"],
            self.value_epochs,
            self.value_minibatch,
        )
        return float(loss)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        metrics = self.natural_gradient_step(batch)
        metrics["value"] = self.fit_value(batch)
        metrics["explained_variance"] = float(explained_variance(batch["values"], batch["returns"]))
        self.updates_done += 1
        return metrics

    def state_dict(self) -> dict:
        return {
            **self.policy.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state)
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.updates_done = int(state["updates_done"])
