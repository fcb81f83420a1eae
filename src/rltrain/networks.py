"""Network bodies and heads shared by the algorithms."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def activation_class(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        from rltrain.errors import RltrainError

        raise RltrainError(f"network.activation={name} is unknown; pick one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: list[int],
    activation: str = "tanh",
    out_gain: float = 1.0,
    orthogonal: bool = True,
    layer_norm: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear layers with `activation` between them; orthogonal init with a chosen gain on the output layer.
    layer_norm=True normalizes each hidden layer's pre-activations (LayerNorm, Ba et al., 2016); dropout > 0 drops
    that fraction of each hidden layer's activations while the module is in training mode (Srivastava et al., 2014)."""
    act = activation_class(activation)
    sizes = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Linear(a, b)
        if orthogonal:
            last = i == len(sizes) - 2
            nn.init.orthogonal_(layer.weight, out_gain if last else math.sqrt(2))
            nn.init.zeros_(layer.bias)
        layers.append(layer)
        if i < len(sizes) - 2:
            if layer_norm:
                layers.append(nn.LayerNorm(b))
            layers.append(act())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    """Q(s, .) over Discrete actions for the DQN family.

    dueling=True splits the last layer into a state value and action advantages (Wang et al., 2016):
        Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a'),
    the mean making V and A identifiable. With a `support` of return values (C51), each action gets logits of a
    categorical distribution over the support instead of one number; forward() then returns its expectation.
    layer_norm=True puts a LayerNorm before every hidden activation: the features feeding the output layer stay
    bounded, which keeps bootstrapped Q estimates from running away (Ball et al., 2023; Gallici et al., 2024).
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden: list[int],
        activation: str,
        dueling: bool = False,
        support: torch.Tensor | None = None,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.num_actions, self.dueling = num_actions, dueling
        self.atoms = 1 if support is None else int(support.numel())
        self.register_buffer("support", support)
        if dueling:
            last_norm = [nn.LayerNorm(hidden[-1])] if layer_norm else []
            self.trunk = nn.Sequential(
                mlp(obs_dim, hidden[-1], hidden[:-1], activation, layer_norm=layer_norm),
                *last_norm,
                activation_class(activation)(),
            )
            self.value_head = mlp(hidden[-1], self.atoms, [], activation)
            self.advantage_head = mlp(hidden[-1], num_actions * self.atoms, [], activation)
        else:
            self.body = mlp(obs_dim, num_actions * self.atoms, hidden, activation, layer_norm=layer_norm)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """[batch, actions, atoms]: Q values (atoms = 1) or per-action distribution logits."""
        if not self.dueling:
            return self.body(obs).view(-1, self.num_actions, self.atoms)
        features = self.trunk(obs)
        advantages = self.advantage_head(features).view(-1, self.num_actions, self.atoms)
        return self.value_head(features).unsqueeze(1) + advantages - advantages.mean(1, keepdim=True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, a) for every action: [batch, actions]."""
        logits = self.logits(obs)
        if self.support is None:
            return logits.squeeze(-1)
        return (logits.softmax(-1) * self.support).sum(-1)


class EnsembleLinear(nn.Module):
    """`members` independent linear layers applied in one batched matmul: x [E, B, in] -> [E, B, out]."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # the default nn.Linear init, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with each member's own gain and shift: x [E, B, dim] -> [E, B, dim]."""

    def __init__(self, members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class QEnsemble(nn.Module):
    """`members` Q(s, a) critics evaluated together; returns [members, batch]. layer_norm=True puts a LayerNorm
    (each member's own) before every hidden activation, as in mlp."""

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, hidden: list[int], activation: str, layer_norm: bool = False
    ):
        super().__init__()
        act = activation_class(activation)
        sizes = [obs_dim + act_dim, *hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(EnsembleLinear(members, a, b))
            if i < len(sizes) - 2:
                if layer_norm:
                    layers.append(EnsembleLayerNorm(members, b))
                layers.append(act())
        self.body = nn.Sequential(*layers)
        self.members = members

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Inputs [batch, dim] go to every member; inputs [members, batch, dim] give each member its own (so that
        each Q_i can be differentiated by its own copy of the action)."""
        x = torch.cat([obs, action], dim=-1)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        return self.body(x).squeeze(-1)


class RunningNorm(nn.Module):
    """Running mean / variance of a stream of vectors (parallel-variance update); kept in state_dict."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.clip = clip
        self.eps = eps

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).double()
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(self.var + self.eps).to(x.dtype)
        return ((x - self.mean.to(x.dtype)) / std).clamp(-self.clip, self.clip)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Divide by the running std without centering (for rewards)."""
        return (x / torch.sqrt(self.var + self.eps).to(x.dtype)).clamp(-self.clip, self.clip)


class Standardizer(nn.Module):
    """(x - mean) / std with fixed statistics, a dataset's, kept in state_dict: offline agents standardize
    observations with it. The identity without data (an agent built only to act gets them from its checkpoint)."""

    def __init__(self, dim: int, data: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if data is None else data.mean(0))
        self.register_buffer("std", torch.ones(dim) if data is None else data.std(0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, in one fused call over all parameters."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch build has it for the parameters' device (fewer ops per step)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


def box_center_and_half_range(action_space, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps a in [-1, 1] to the env's box as center + half_range * a (for tanh-bounded policies)."""
    if not (math.isfinite(float(action_space.low.min())) and math.isfinite(float(action_space.high.max()))):
        from rltrain.errors import RltrainError

        raise RltrainError(
            f"the action space {action_space} has infinite bounds, which this algorithm maps its actions into; give "
            "the env finite action bounds, or train on it with algo=ppo, a2c, trpo or reinforce (unbounded Gaussians)."
        )
    low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
    high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)
    return (high + low) / 2, (high - low) / 2


class RegressionPolicy(nn.Module):
    """A policy fitted by (weighted) likelihood of a dataset's actions: behaviour cloning, AWR, IQL's extraction.

    Observations are standardized with fixed statistics (the dataset's; buffers, so checkpoints keep them).
    Discrete:  log pi(a|s) = log softmax(f(s))_a
    Box:       a~ = (a - center) / half_range in [-1, 1],  mu = tanh(f_mu(s)),
      deterministic:  log pi(a|s) := -||mu - a~||^2   (a fixed-std Gaussian up to scale and constant: MSE)
      gaussian:       log pi(a|s) = sum_d log N(a~_d; mu_d, sigma_d),  sigma = exp(clamp(f_sigma(s)))
    Acting: argmax f(s), or center + half_range * mu (a clipped sample of N(mu, sigma) when exploring).
    dropout > 0 drops that fraction of f's hidden activations in log_likelihood only (a regularizer of the fit, as
    IQL's paper does on its smallest datasets); acting and mode() always use the whole network.
    """

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
    KINDS = ("deterministic", "gaussian")

    def __init__(
        self,
        observation_space,
        action_space,
        hidden: list[int],
        activation: str,
        kind: str = "deterministic",
        observations: torch.Tensor | None = None,
        dropout: float = 0.0,
    ):
        """kind: deterministic or gaussian (Box actions; Discrete ones are categorical either way). observations:
        those whose mean and std standardize the inputs (a dataset's); None keeps 0 and 1 until a checkpoint loads.
        dropout: the fraction of hidden activations dropped while fitting, in [0, 1)."""
        if kind not in self.KINDS:
            from rltrain.errors import RltrainError

            raise RltrainError(f"algo.policy={kind} is unknown; pick deterministic or gaussian.")
        if not 0 <= dropout < 1:
            from rltrain.errors import RltrainError

            raise RltrainError(f"algo.actor_dropout={dropout} must be in [0, 1): the fraction of units dropped.")
        super().__init__()
        obs_dim = int(math.prod(observation_space.shape))
        self.discrete = not hasattr(action_space, "shape") or len(action_space.shape) == 0
        self.gaussian = kind == "gaussian" and not self.discrete
        self.act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        out_dim = 2 * self.act_dim if self.gaussian else self.act_dim
        self.dropout = dropout
        self.body = mlp(obs_dim, out_dim, hidden, activation, dropout=dropout)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        if not self.discrete:
            center, half_range = box_center_and_half_range(action_space, torch.device("cpu"))
            self.register_buffer("action_center", center)
            self.register_buffer("action_half_range", half_range)
        if observations is not None:
            self.fit_observations(observations)
        self.eval()  # dropout off except inside log_likelihood

    @torch.no_grad()
    def fit_observations(self, obs: torch.Tensor) -> None:
        """Standardize observations with the mean and std of these (a dataset's) from now on."""
        self.obs_mean.copy_(obs.reshape(obs.shape[0], -1).mean(0))
        self.obs_std.copy_(obs.reshape(obs.shape[0], -1).std(0).clamp_min(1e-6))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.reshape(obs.shape[0], -1) - self.obs_mean) / self.obs_std

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Discrete: (logits, zeros); Box: (mu in [-1, 1], log sigma; zeros when deterministic)."""
        out = self.body(self.normalize(obs))
        if self.discrete:
            return out, torch.zeros_like(out)
        if not self.gaussian:
            return torch.tanh(out), torch.zeros_like(out)
        mean, log_std = out.chunk(2, dim=-1)
        return torch.tanh(mean), log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)

    def unit_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Dataset actions as network inputs: one-hot (Discrete) or scaled to [-1, 1] (Box)."""
        if self.discrete:
            return nn.functional.one_hot(actions.long(), self.act_dim).float()
        return ((actions - self.action_center) / self.action_half_range).clamp(-1.0, 1.0)

    def log_likelihood(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) per sample, as in the class docstring (with dropout, if any, on)."""
        if self.dropout > 0:  # the mode switches cost about 60 us an update: only when there is dropout to switch
            self.train()
            out, log_std = self(obs)
            self.eval()
        else:
            out, log_std = self(obs)
        if self.discrete:
            return out.log_softmax(-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        target = self.unit_actions(actions)
        if not self.gaussian:
            return -(out - target).square().sum(-1)
        return (-0.5 * ((target - out) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action as a network input: one-hot argmax, or mu in [-1, 1]."""
        out, _ = self(obs)
        return nn.functional.one_hot(out.argmax(-1), self.act_dim).float() if self.discrete else out

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        out, log_std = self(obs)
        if self.discrete:
            return torch.distributions.Categorical(logits=out).sample() if explore else out.argmax(-1)
        if explore and self.gaussian:
            out = (out + log_std.exp() * torch.randn_like(out)).clamp(-1.0, 1.0)
        return self.action_center + self.action_half_range * out
