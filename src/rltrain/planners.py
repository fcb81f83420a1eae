"""Planners for model predictive control: choose an action sequence of `horizon` steps that maximizes a batched
`returns(action_sequences [B, N, H, A]) -> [B, N]` (B observations planned for at once, N candidates each).

Every planner starts from `mean` [B, H, A] (the previous plan shifted by one step: the caller's warm start),
evaluates all candidates of an iteration in ONE call to `returns` (population x particles x horizon as one tensor
computation inside it), keeps every candidate inside [low, high], and returns the new plan [B, H, A]; the caller
executes its first action.

- cem (Cross-Entropy Method, as in PETS, Chua et al., 2018):
      a^(i) ~ N(mean, std^2) clipped to the bounds, i = 1..population
      E = the `elites` best by return;  mean <- alpha * mean + (1 - alpha) * mean(E),  std likewise with std(E)
- mppi (Model Predictive Path Integral, Williams et al., 2017; the form of Nagabandi et al., 2019):
      a^(i) = clip(mean + noise_std * eps),  w_i = softmax_i(R_i / temperature),  mean <- sum_i w_i a^(i)
- random (random shooting): uniform candidates plus the warm-start plan itself; the best one wins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Returns = Callable[[torch.Tensor], torch.Tensor]


def clip(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(x, high), low)


class CEM:
    def __init__(self, population: int, elites: int, iterations: int, alpha: float, init_std: float):
        if not 0 < elites <= population:
            raise ValueError(f"elites={elites} must be in 1..population={population}")
        self.population, self.elites, self.iterations = population, elites, iterations
        self.alpha, self.init_std = alpha, init_std

    def __call__(self, returns: Returns, mean: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        batch, horizon, act_dim = mean.shape
        std = (self.init_std * (high - low) / 2).expand_as(mean).clone()
        for _ in range(self.iterations):
            noise = torch.randn(batch, self.population, horizon, act_dim, device=mean.device)
            candidates = clip(mean.unsqueeze(1) + std.unsqueeze(1) * noise, low, high)
            best = returns(candidates).topk(self.elites, dim=1).indices  # [B, elites]
            elite = candidates.gather(1, best[:, :, None, None].expand(-1, -1, horizon, act_dim))
            mean = self.alpha * mean + (1 - self.alpha) * elite.mean(1)
            std = self.alpha * std + (1 - self.alpha) * elite.std(1, unbiased=False)
        return mean


class MPPI:
    def __init__(self, population: int, iterations: int, temperature: float, noise_std: float):
        self.population, self.iterations = population, iterations
        self.temperature, self.noise_std = temperature, noise_std

    def __call__(self, returns: Returns, mean: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        batch, horizon, act_dim = mean.shape
        std = self.noise_std * (high - low) / 2
        for _ in range(self.iterations):
            noise = torch.randn(batch, self.population, horizon, act_dim, device=mean.device)
            candidates = clip(mean.unsqueeze(1) + std * noise, low, high)
            weights = (returns(candidates) / self.temperature).softmax(dim=1)  # [B, N]
            mean = (weights[:, :, None, None] * candidates).sum(1)
        return mean


class RandomShooting:
    def __init__(self, population: int):
        self.population = population

    def __call__(self, returns: Returns, mean: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        batch, horizon, act_dim = mean.shape
        uniform = torch.rand(batch, self.population - 1, horizon, act_dim, device=mean.device)
        candidates = torch.cat([mean.unsqueeze(1), low + (high - low) * uniform], dim=1)
        best = returns(candidates).argmax(dim=1)
        return candidates[torch.arange(batch, device=mean.device), best]


def make_planner(
    name: str,
    population: int,
    elites: int,
    iterations: int,
    alpha: float,
    init_std: float,
    temperature: float,
    noise_std: float,
):
    if name == "cem":
        return CEM(population, elites, iterations, alpha, init_std)
    if name == "mppi":
        return MPPI(population, iterations, temperature, noise_std)
    if name == "random":
        return RandomShooting(population)
    from rltrain.errors import RltrainError

    raise RltrainError(f"algo.planner={name} is unknown; pick cem, mppi or random.")
