"""Each loss on a fake batch is finite and its gradients reach only the networks it is meant to train."""

import gymnasium as gym
import numpy as np
import torch

from rltrain.algos.dqn import DQN
from rltrain.algos.ppo import PPO
from rltrain.algos.sac import SAC
from rltrain.algos.td3 import DeterministicActorCritic

NET = {"hidden": [32, 32], "activation": "tanh"}
CPU = torch.device("cpu")
BOX_OBS = gym.spaces.Box(-1, 1, (3,), np.float32)


def grads_of(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


def zero_grads(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


def fake_offpolicy_batch(n: int, actions: torch.Tensor) -> dict:
    return {
        "obs": torch.randn(n, 3),
        "actions": actions,
        "rewards": torch.randn(n),
        "next_obs": torch.randn(n, 3),
        "terminated": (torch.rand(n) < 0.2).float(),
    }


def test_dqn_loss_trains_the_online_net_only():
    torch.manual_seed(0)
    agent = DQN(BOX_OBS, gym.spaces.Discrete(4), NET, CPU, total_steps=1000, double=True)
    loss, _ = agent.loss(fake_offpolicy_batch(64, torch.randint(0, 4, (64,))))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(grads_of(agent.q))
    assert not any(p.grad is not None for p in agent.q_target.parameters())


def test_sac_losses_reach_only_their_own_networks():
    torch.manual_seed(0)
    agent = SAC(BOX_OBS, gym.spaces.Box(-2, 2, (2,), np.float32), NET, CPU)
    batch = fake_offpolicy_batch(64, torch.rand(64, 2) * 4 - 2)

    critic_loss, q = agent.critic_loss(batch)
    assert torch.isfinite(critic_loss) and q.shape == (2, 64)
    critic_loss.backward()
    assert all(grads_of(agent.critics))
    assert not any(grads_of(agent.actor)) and agent.log_alpha.grad is None
    assert not any(p.grad is not None for p in agent.critics_target.parameters())
    zero_grads(agent.critics, agent.actor)

    actor_loss, log_prob = agent.actor_loss(batch["obs"])
    assert torch.isfinite(actor_loss) and torch.isfinite(log_prob).all()
    actor_loss.backward()
    assert all(grads_of(agent.actor))
    assert not any(p.grad is not None for p in agent.critics.parameters()) and agent.log_alpha.grad is None
    zero_grads(agent.actor)

    alpha_loss = agent.alpha_loss(log_prob)
    alpha_loss.backward()
    assert agent.log_alpha.grad is not None and not any(p.grad is not None for p in agent.actor.parameters())


def test_sac_log_prob_matches_the_tanh_change_of_variables():
    torch.manual_seed(0)
    agent = SAC(BOX_OBS, gym.spaces.Box(-1, 1, (1,), np.float32), NET, CPU)
    obs = torch.randn(5, 3)
    torch.manual_seed(1)
    action, log_prob = agent.actor.sample(obs)
    mean, log_std = agent.actor(obs)
    torch.manual_seed(1)
    pre_tanh = mean + log_std.exp() * torch.randn_like(mean)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(pre_tanh).sum(-1)
    expected -= torch.log(1 - torch.tanh(pre_tanh).square()).sum(-1)
    torch.testing.assert_close(log_prob, expected, rtol=1e-4, atol=1e-4)
    assert action.abs().max() <= 1


def ppo_batch(agent: PPO, n: int, discrete: bool) -> dict:
    obs = torch.randn(n, 3)
    out = agent.policy_step(obs)
    return {
        "obs": out["obs"],
        "actions": out["action"],
        "log_probs": out["log_prob"],
        "values": out["value"],
        "advantages": torch.randn(n),
        "returns": torch.randn(n),
    }


def test_ppo_loss_is_finite_and_trains_actor_and_critic_for_both_action_kinds():
    torch.manual_seed(0)
    for action_space, discrete in ((gym.spaces.Discrete(3), True), (gym.spaces.Box(-1, 1, (2,), np.float32), False)):
        agent = PPO(BOX_OBS, action_space, NET, CPU, total_steps=1000, num_envs=1, entropy_coef=0.01, clip_value=0.2)
        batch = ppo_batch(agent, 32, discrete)
        loss, parts = agent.loss(batch)
        assert torch.isfinite(loss) and all(torch.isfinite(torch.as_tensor(v)) for v in parts.values())
        # at the old policy the ratio is 1: no clipping, KL 0
        assert float(parts["clip_fraction"]) == 0 and abs(float(parts["approx_kl"])) < 1e-6
        loss.backward()
        assert all(grads_of(agent.policy.actor)) and all(grads_of(agent.policy.critic))
        assert (agent.policy.log_std.grad is None) if discrete else (agent.policy.log_std.grad is not None)


def test_ppo_value_loss_reaches_only_the_critic():
    torch.manual_seed(0)
    agent = PPO(BOX_OBS, gym.spaces.Discrete(3), NET, CPU, total_steps=1000, num_envs=1)
    _, parts = agent.loss(ppo_batch(agent, 32, True))
    # the parts are detached for logging; recompute the value loss the way loss() does
    value = agent.policy.critic(torch.randn(8, 3)).squeeze(-1)
    (value - torch.randn(8)).square().mean().backward()
    assert all(grads_of(agent.policy.critic)) and not any(grads_of(agent.policy.actor))


def test_td3_and_ddpg_losses_reach_only_their_own_networks():
    torch.manual_seed(0)
    for critics, target_noise in ((2, 0.2), (1, 0.0)):
        agent = DeterministicActorCritic(
            BOX_OBS,
            gym.spaces.Box(-2, 2, (2,), np.float32),
            NET,
            CPU,
            num_envs=1,
            critics=critics,
            target_noise=target_noise,
        )
        batch = fake_offpolicy_batch(64, torch.rand(64, 2) * 4 - 2)
        critic_loss, q = agent.critic_loss(batch)
        assert torch.isfinite(critic_loss) and q.shape == (critics, 64)
        critic_loss.backward()
        assert all(grads_of(agent.critics)) and not any(grads_of(agent.actor))
        for target in (agent.actor_target, agent.critics_target):
            assert not any(p.grad is not None for p in target.parameters())
        zero_grads(agent.critics, agent.actor)
        actor_loss = agent.actor_loss(batch["obs"])
        actor_loss.backward()
        assert torch.isfinite(actor_loss) and all(grads_of(agent.actor))
        assert not any(p.grad is not None for p in agent.critics.parameters())


def test_exploration_stays_inside_the_action_box_for_both_noises():
    torch.manual_seed(0)
    for noise in ("gaussian", "ou"):
        agent = DeterministicActorCritic(
            BOX_OBS,
            gym.spaces.Box(-2, 2, (2,), np.float32),
            NET,
            CPU,
            num_envs=3,
            noise=noise,
            exploration_noise=5.0,
        )
        actions = torch.cat([agent.act(torch.randn(3, 3), explore=True) for _ in range(20)])
        assert actions.abs().max() <= 2.0 and actions.std() > 0.5
