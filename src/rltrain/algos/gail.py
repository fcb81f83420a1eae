"""Generative Adversarial Imitation Learning (Ho & Ermon, 2016) with rltrain's PPO as the learner, and absorbing
states (Kostrikov et al., 2019, "Discriminator-Actor-Critic").

A discriminator D(s, a) = sigmoid(g(s, a)) tells expert pairs (from the dataset) from the learner's pairs:
    L_D = -E_expert[w log D(s, a)] - E_learner[w log(1 - D(s, a))]  (+ lambda * E[(||grad_x g(x^)|| - 1)^2],
          x^ = eps * x_expert + (1 - eps) * x_learner, the optional gradient penalty of Gulrajani et al., 2017)
The env reward is never used: after each rollout, before GAE, every step's reward becomes
    gail:  r(s, a) = -log(1 - D(s, a)) = softplus(g(s, a))        (always > 0)
    airl:  r(s, a) = log D(s, a) - log(1 - D(s, a)) = g(s, a)     (Fu et al., 2018; either sign)
(plus gamma * V(final obs) on time-limit truncations, which the loop adds), then PPO updates the policy on those
rewards and D takes `disc_steps` Adam steps on minibatches of expert and learner pairs of the same rollout.

Absorbing states (absorbing=true). A reward that is positive per step, as gail's is, teaches the learner to make
episodes last whatever the expert did (survival bias); one that is negative teaches it to end them. The fix: an
episode that really ends (terminated, not a time-limit truncation) goes on in an absorbing state s_abs that it
never leaves, rewarded like any other state by D: r_abs = r(D(s_abs, .)). Staying there from the next step on is
worth sum_{k>=1} gamma^k r_abs = gamma * r_abs / (1 - gamma), added to the reward of each terminated step. D learns
s_abs from both sides: one absorbing pair per terminated episode of the dataset (expert) and per terminated step of
the rollout (learner). An expert that ends its episodes makes s_abs look expert (ending is rewarded as much as the
expert does it), an expert that never ends them makes it look like the learner (ending costs the rewards it forgoes).
Each absorbing pair weighs w = gamma / (1 - gamma) in L_D (real pairs w = 1), the steps it stands for in the return:
unweighted, D learned s_abs from its few pairs long after the real ones, and while its early guess r_abs exceeded
the learner's real rewards, ending episodes paid gamma / (1 - gamma) times that guess (on CartPole most seeds first
learned to fall at once, and some never left it).
Inputs of D: observations standardized with the dataset's statistics; Discrete actions one-hot, Box actions scaled
to [-1, 1]; and an absorbing indicator: 0 for real pairs, and s_abs is all zeros with the indicator 1.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rltrain.agent import Algorithm, agent_class, build_agent
from rltrain.errors import RltrainError
from rltrain.networks import adam, box_center_and_half_range, mlp

REWARDS = ("gail", "airl")


class GAIL:
    kind = "onpolicy"
    observation_spaces = (gym.spaces.Box,)
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    needs_dataset = True

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        network: dict,
        device: torch.device,
        total_steps: int,
        num_envs: int,
        ppo: dict,
        dataset=None,
        seed: int = 0,
        reward: str = "gail",
        absorbing: bool = True,
        disc_lr: float = 3e-4,
        disc_steps: int = 5,
        disc_batch_size: int = 256,
        grad_penalty: float = 0.0,
    ):
        if reward not in REWARDS:
            raise RltrainError(f"algo.reward={reward} is unknown; pick gail or airl.")
        if ppo.get("normalize_reward"):
            raise RltrainError("algo.ppo.normalize_reward scales env rewards, which GAIL never uses; set it false.")
        learner = Algorithm(agent_class(ppo), observation_space, action_space)
        if learner.kind != "onpolicy" or getattr(learner.cls, "needs_dataset", False):
            raise RltrainError(f"algo.ppo._target_ must be an on-policy RL learner, not {ppo['_target_']}.")
        learner_config = {"algo": ppo, "network": network, "total_steps": total_steps, "seed": seed}
        self.learner = build_agent(learner, learner_config, device, num_envs)
        self.device = device
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        self.input_dim = obs_dim + self.act_dim + 1  # observation, action, absorbing indicator
        self.discriminator = mlp(self.input_dim, 1, list(network["hidden"]), network["activation"]).to(device)
        self.disc_optimizer = adam(self.discriminator.parameters(), disc_lr)
        if not self.discrete:
            self.action_center, self.action_half_range = box_center_and_half_range(action_space, device)
        self.obs_mean = torch.zeros(obs_dim, device=device)
        self.obs_std = torch.ones(obs_dim, device=device)
        if dataset is not None:  # an agent built to act from a checkpoint gets them from load_state_dict
            self.obs_mean, self.obs_std = dataset.obs.mean(0), dataset.obs.std(0).clamp_min(1e-6)
        self.dataset = dataset
        self.absorbing = absorbing
        self.expert_inputs = None  # D's inputs of every expert pair, then one absorbing pair per terminated episode
        if dataset is not None:
            expert_absorbing = int(dataset.terminated.sum()) if absorbing else 0
            self.expert_inputs = torch.cat(
                [self._inputs(dataset.obs, dataset.actions), self._absorbing_inputs(expert_absorbing)]
            )
        self.reward, self.disc_steps, self.disc_batch_size = reward, disc_steps, disc_batch_size
        self.grad_penalty = grad_penalty
        # read by the on-policy loop
        self.rollout_steps, self.gamma, self.gae_lambda = (
            self.learner.rollout_steps,
            self.learner.gamma,
            self.learner.gae_lambda,
        )

    # --- acting: the learner's policy --------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        return self.learner.act(obs, explore)

    def policy_step(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.learner.policy_step(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.learner.value(obs)

    def scale_rewards(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """The env reward is never used for learning: the rollout starts from zero and relabel_rewards adds D's."""
        return torch.zeros_like(rewards)

    # --- the discriminator -----------------------------------------------------------------------------------
    def _raw_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Undo the learner's running observation normalization (rollouts store normalized observations)."""
        norm = self.learner.policy.obs_norm
        if norm is None:
            return obs
        return obs * torch.sqrt(norm.var + norm.eps).to(obs.dtype) + norm.mean.to(obs.dtype)

    def _inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        obs = (obs - self.obs_mean) / self.obs_std
        if self.discrete:
            actions = nn.functional.one_hot(actions.long(), self.act_dim).float()
        else:
            actions = ((actions - self.action_center) / self.action_half_range).clamp(-1.0, 1.0)
        real = torch.zeros(obs.shape[0], 1, device=obs.device)  # the absorbing indicator
        return torch.cat([obs.reshape(obs.shape[0], -1), actions.reshape(actions.shape[0], -1), real], dim=-1)

    def _absorbing_inputs(self, count: int) -> torch.Tensor:
        """D's inputs of `count` absorbing pairs: zero observation and action, indicator 1."""
        inputs = torch.zeros(count, self.input_dim, device=self.device)
        inputs[:, -1] = 1.0
        return inputs

    def _learner_pairs(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """D's inputs for rollout pairs: raw observations, and the actions the env received."""
        return self._inputs(self._raw_obs(obs), self.learner.policy.to_env(actions))

    @torch.no_grad()
    def rewards(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(inputs).squeeze(-1)
        return nn.functional.softplus(logits) if self.reward == "gail" else logits

    @torch.no_grad()
    def absorbing_value(self) -> torch.Tensor:
        """gamma * r_abs / (1 - gamma): what staying in the absorbing state from the next step on is worth."""
        return self.gamma * self.rewards(self._absorbing_inputs(1))[0] / (1 - self.gamma)

    @torch.no_grad()
    def relabel_rewards(self, rollout) -> None:
        """Add D's reward of every (s, a) of the rollout to its rewards, and the absorbing state's value to those
        of terminated steps, before advantages are computed."""
        steps, envs = rollout.rewards.shape
        inputs = self._learner_pairs(rollout.obs.reshape(steps * envs, -1), rollout.actions.flatten(0, 1))
        rollout.rewards += self.rewards(inputs).reshape(steps, envs)
        if self.absorbing:
            rollout.rewards += rollout.terminated * self.absorbing_value()

    def discriminator_loss(
        self, expert: torch.Tensor, learner: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Binary cross-entropy of D on expert (label 1) and learner (label 0) inputs, plus the gradient penalty."""
        logits_expert = self.discriminator(expert).squeeze(-1)
        logits_learner = self.discriminator(learner).squeeze(-1)
        bce = nn.functional.binary_cross_entropy_with_logits
        loss = bce(logits_expert, torch.ones_like(logits_expert), weight=self._pair_weights(expert)) + bce(
            logits_learner, torch.zeros_like(logits_learner), weight=self._pair_weights(learner)
        )
        info = {}
        if self.grad_penalty > 0:
            eps = torch.rand(expert.shape[0], 1, device=expert.device)
            mixed = (eps * expert + (1 - eps) * learner).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.discriminator(mixed).sum(), mixed, create_graph=True)
            penalty = (grad.norm(dim=-1) - 1).square().mean()
            loss = loss + self.grad_penalty * penalty
            info["disc_grad_penalty"] = penalty.detach()
        with torch.no_grad():
            info.update(
                {
                    "disc_loss": loss.detach(),
                    "disc_accuracy_expert": (logits_expert > 0).float().mean(),
                    "disc_accuracy_learner": (logits_learner < 0).float().mean(),
                    "d_expert": torch.sigmoid(logits_expert).mean(),
                    "d_learner": torch.sigmoid(logits_learner).mean(),
                }
            )
        return loss, info

    def _pair_weights(self, inputs: torch.Tensor) -> torch.Tensor:
        """1 for a real pair; gamma / (1 - gamma) for an absorbing pair, the steps it stands for in the return."""
        return 1 + (self.gamma / (1 - self.gamma) - 1) * inputs[:, -1]

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """PPO on the relabelled rollout, then disc_steps discriminator steps on its pairs against expert pairs."""
        metrics = self.learner.update(batch)
        pairs = self._learner_pairs(batch["obs"], batch["actions"])
        learner_absorbing = int(batch["terminated"].sum()) if self.absorbing else 0
        learner_inputs = torch.cat([pairs, self._absorbing_inputs(learner_absorbing)])
        batch_size = min(self.disc_batch_size, learner_inputs.shape[0])
        for _ in range(self.disc_steps):
            expert = torch.randint(0, self.expert_inputs.shape[0], (batch_size,), device=self.device)
            learner = torch.randint(0, learner_inputs.shape[0], (batch_size,), device=self.device)
            loss, info = self.discriminator_loss(self.expert_inputs[expert], learner_inputs[learner])
            self.disc_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.disc_optimizer.step()
        info["imitation_reward"] = self.rewards(pairs).mean()
        if self.absorbing:
            info["absorbing_reward"] = self.rewards(self._absorbing_inputs(1))[0]
        return {**metrics, **info}

    def state_dict(self) -> dict:
        return {
            "learner": self.learner.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "disc_optimizer": self.disc_optimizer.state_dict(),
            "obs_mean": self.obs_mean.clone(),
            "obs_std": self.obs_std.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.disc_optimizer.load_state_dict(state["disc_optimizer"])
        self.obs_mean.copy_(state["obs_mean"])
        self.obs_std.copy_(state["obs_std"])
