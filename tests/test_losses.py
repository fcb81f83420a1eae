"""Each loss on a fake batch is finite, has the one shape (loss, info: dict of tensors), and its gradients reach
only the networks it is meant to train."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from rltrain.algos.a2c import A2C
from rltrain.algos.c51 import C51, project_distribution
from rltrain.algos.dqn import DQN
from rltrain.algos.ppo import PPO
from rltrain.algos.reinforce import Reinforce
from rltrain.algos.sac import SAC
from rltrain.algos.td3 import DeterministicActorCritic
from rltrain.algos.trpo import TRPO, conjugate_gradient
from rltrain.errors import RltrainError
from rltrain.networks import EnsembleLayerNorm, QEnsemble, QNetwork

NET = {"hidden": [32, 32], "activation": "tanh"}
CPU = torch.device("cpu")
BOX_OBS = gym.spaces.Box(-1, 1, (3,), np.float32)


def grads_of(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


def zero_grads(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


def assert_loss_shape(result) -> tuple[torch.Tensor, dict]:
    """(loss, info): a finite scalar loss and a dict of finite tensors."""
    loss, info = result
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and torch.isfinite(loss)
    assert isinstance(info, dict) and all(isinstance(v, torch.Tensor) for v in info.values())
    assert all(torch.isfinite(v).all() for v in info.values())
    return loss, info


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
    loss, info = assert_loss_shape(agent.loss(fake_offpolicy_batch(64, torch.randint(0, 4, (64,)))))
    assert set(info) == {"q_mean"}
    loss.backward()
    assert all(grads_of(agent.q))
    assert not any(p.grad is not None for p in agent.q_target.parameters())


def test_sac_losses_reach_only_their_own_networks():
    torch.manual_seed(0)
    agent = SAC(BOX_OBS, gym.spaces.Box(-2, 2, (2,), np.float32), NET, CPU)
    batch = fake_offpolicy_batch(64, torch.rand(64, 2) * 4 - 2)

    critic_loss, info = assert_loss_shape(agent.critic_loss(batch))
    assert set(info) == {"q_mean"}
    critic_loss.backward()
    assert all(grads_of(agent.critics))
    assert not any(grads_of(agent.actor)) and agent.log_alpha.grad is None
    assert not any(p.grad is not None for p in agent.critics_target.parameters())
    zero_grads(agent.critics, agent.actor)

    actor_loss, info = assert_loss_shape(agent.actor_loss(batch["obs"]))
    assert info["log_prob"].shape == (64,) and not info["log_prob"].requires_grad
    actor_loss.backward()
    assert all(grads_of(agent.actor))
    assert not any(p.grad is not None for p in agent.critics.parameters()) and agent.log_alpha.grad is None
    zero_grads(agent.actor)

    alpha_loss, _ = assert_loss_shape(agent.alpha_loss(info["log_prob"]))
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


def rollout_batch(agent, n: int) -> dict:
    """A fake on-policy batch for agents with an ActorCritic (A2C, TRPO, REINFORCE)."""
    out = agent.policy_step(torch.randn(n, 3))
    return {
        "obs": out["obs"],
        "actions": out["action"],
        "log_probs": out["log_prob"],
        "values": out["value"],
        "advantages": torch.randn(n),
        "returns": torch.randn(n),
        "episodes": torch.tensor(2),
    }


def test_ppo_loss_is_finite_and_trains_actor_and_critic_for_both_action_kinds():
    torch.manual_seed(0)
    for action_space, discrete in ((gym.spaces.Discrete(3), True), (gym.spaces.Box(-1, 1, (2,), np.float32), False)):
        agent = PPO(BOX_OBS, action_space, NET, CPU, total_steps=1000, num_envs=1, entropy_coef=0.01, clip_value=0.2)
        batch = rollout_batch(agent, 32)
        loss, parts = assert_loss_shape(agent.loss(batch))
        # at the old policy the ratio is 1: no clipping, KL 0
        assert float(parts["clip_fraction"]) == 0 and abs(float(parts["approx_kl"])) < 1e-6
        loss.backward()
        assert all(grads_of(agent.policy.actor)) and all(grads_of(agent.policy.critic))
        assert (agent.policy.log_std.grad is None) if discrete else (agent.policy.log_std.grad is not None)


@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,), np.float32)])
@pytest.mark.parametrize("clip_value", [None, 0.2])
def test_ppo_value_terms_reach_only_the_critic_and_the_policy_terms_only_the_actor(action_space, clip_value):
    """PPO's own loss, value terms on: the value terms give the actor (and log std) no gradient, the policy and
    entropy terms give the critic none."""
    torch.manual_seed(0)
    agent = PPO(BOX_OBS, action_space, NET, CPU, 1000, num_envs=1, value_coef=0.5, clip_value=clip_value)
    policy = agent.policy
    actor_params = [*policy.actor.parameters(), policy.log_std]
    batch = rollout_batch(agent, 32)

    # with zero advantages and no entropy bonus, only the value terms are left in the loss
    agent.entropy_coef = 0.0
    loss, parts = agent.loss({**batch, "advantages": torch.zeros(32)})
    assert float(parts["policy"]) == 0 and float(parts["value"]) > 0
    loss.backward()
    assert all(grads_of(policy.critic))
    assert not any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in actor_params)
    zero_grads(policy.actor, policy.critic)
    policy.log_std.grad = None

    # and the actor's gradient is the same with the value terms on or off: nothing of them reaches it
    agent.entropy_coef = 0.01
    actor_grads = []
    for value_coef in (0.5, 0.0):
        agent.value_coef = value_coef
        agent.loss(batch)[0].backward()
        actor_grads.append([p.grad.clone() if p.grad is not None else None for p in actor_params])
        critic_reached = any(grads_of(policy.critic))
        assert critic_reached == (value_coef > 0)  # the policy and entropy terms never reach the critic
        zero_grads(policy.actor, policy.critic)
        policy.log_std.grad = None
    for with_value, without_value in zip(*actor_grads):
        assert (with_value is None and without_value is None) or torch.equal(with_value, without_value)
    assert any(g is not None and bool(g.abs().sum() > 0) for g in actor_grads[0])


@pytest.mark.parametrize("algorithm", [PPO, A2C])
def test_gsde_noise_is_linear_in_the_features_held_between_draws_and_its_log_prob_is_the_state_gaussian(algorithm):
    """gSDE: a = mu(s) + z(s) W with one W per env, redrawn every `gsde` steps (2 here) and at each rollout's
    start; the stored log-prob is that of N(mu(s), z(s)^2 sigma^2), and the actor's hidden layers get no gradient
    through the std (z is detached)."""
    torch.manual_seed(0)
    box = gym.spaces.Box(-2, 2, (2,), np.float32)
    agent = algorithm(BOX_OBS, box, NET, CPU, 1000, num_envs=3, rollout_steps=6, gsde=2, init_log_std=-1.0)
    policy = agent.policy
    assert policy.log_std.shape == (NET["hidden"][-1], 2)
    obs = torch.randn(3, 3)
    matrices = []
    for _ in range(7):
        step = policy.policy_step(obs)
        matrices.append(policy.exploration.clone())
        features = policy.actor[:-1](obs)
        mean = policy.actor[-1](features)
        # the action is the mean plus the features times this env's matrix
        torch.testing.assert_close(step["action"], mean + torch.einsum("ef,efa->ea", features, policy.exploration))
        std = (features.square() @ policy.log_std.exp().square() + 1e-6).sqrt()
        torch.testing.assert_close(step["log_prob"], Normal(mean, std).log_prob(step["action"]).sum(-1))
    same = [torch.equal(a, b) for a, b in zip(matrices, matrices[1:])]
    # steps 0-1, 2-3, 4-5 share a draw; step 6 starts the next rollout
    assert same == [True, False, True, False, True, False]
    assert not torch.equal(matrices[0][0], matrices[0][1])  # each env its own matrix

    # once per rollout with gsde=-1
    policy.gsde_sample_freq, policy.gsde_steps = -1, 0
    draws = []
    for _ in range(7):
        policy.policy_step(obs)
        draws.append(policy.exploration.clone())
    assert [torch.equal(a, b) for a, b in zip(draws, draws[1:])] == [True] * 5 + [False]

    # the std's gradient reaches log_std but not the actor's hidden layers
    log_prob, entropy = policy.log_prob_and_entropy(step["obs"], step["action"])
    entropy.sum().backward()
    assert policy.log_std.grad is not None and policy.log_std.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.actor[:-1].parameters())


def test_gsde_on_discrete_actions_is_one_clear_error():
    with pytest.raises(RltrainError, match="algo.gsde=4 needs Box actions"):
        PPO(BOX_OBS, gym.spaces.Discrete(2), NET, CPU, 1000, num_envs=1, gsde=4)


def test_gsde_above_the_rollout_length_holds_the_noise_across_rollouts_scaled_by_the_current_std():
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,), np.float32)
    agent = PPO(BOX_OBS, box, NET, CPU, 1000, num_envs=2, rollout_steps=4, gsde=12, init_log_std=-1.0)
    policy, obs = agent.policy, torch.randn(2, 3)
    eps = []
    for step in range(13):
        policy.policy_step(obs)
        eps.append(policy.exploration_eps.clone())
        torch.testing.assert_close(policy.exploration, policy.exploration_eps * policy.log_std.exp())
        if step == 5:  # as an update between rollouts would: W = sigma * eps follows the new sigma
            with torch.no_grad():
                policy.log_std.add_(0.5)
    # steps 0-11 (three rollouts) share one draw; step 12 draws again
    assert [torch.equal(a, b) for a, b in zip(eps, eps[1:])] == [True] * 11 + [False]


@pytest.mark.parametrize("gsde", [4, 12])
def test_gsde_resumes_with_the_noise_it_held(gsde):
    """A checkpoint keeps the held noise and the step count: the resumed run acts as the uninterrupted one, whether
    the next rollout draws afresh (gsde = rollout length) or keeps holding (gsde above it)."""
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,), np.float32)
    agent = PPO(BOX_OBS, box, NET, CPU, 1000, num_envs=2, rollout_steps=4, gsde=gsde)
    obs = torch.randn(2, 3)
    for _ in range(4):  # one rollout, then the checkpoint
        agent.policy_step(obs)
    resumed = PPO(BOX_OBS, box, NET, CPU, 1000, num_envs=2, rollout_steps=4, gsde=gsde)
    resumed.load_state_dict(agent.state_dict())
    torch.testing.assert_close(resumed.policy.log_std, agent.policy.log_std)
    for _ in range(3):
        torch.manual_seed(1)
        expected = agent.policy_step(obs)["action"]
        torch.manual_seed(1)
        torch.testing.assert_close(resumed.policy_step(obs)["action"], expected)


def test_sac_gsde_noise_is_linear_in_the_features_held_for_k_steps_and_the_losses_see_its_gaussian():
    """SAC with gSDE: exploring actions are tanh(mu(s) + z(s) W) with one W = sigma * eps per env, eps held for
    `gsde` steps (3 here; -1: train_every steps); the losses sample tanh(N(mu(s), z(s)^2 sigma^2)), whose std reaches
    the log std matrix but not the hidden layers (z is detached)."""
    torch.manual_seed(0)
    box = gym.spaces.Box(-2, 2, (2,), np.float32)
    agent = SAC(BOX_OBS, box, NET, CPU, gsde=3, gsde_init_log_std=-1.0)
    sigma = agent.actor.gsde_log_std.exp()
    assert agent.actor.gsde_log_std.shape == (NET["hidden"][-1], 2)
    obs = torch.randn(2, 3)
    draws = []
    for _ in range(7):
        action = agent.act(obs, explore=True)
        draws.append(agent.exploration.eps.clone())
        features, mean = agent.actor.features_and_mean(obs)
        noise = torch.einsum("ef,efa->ea", features, agent.exploration.eps * sigma)
        torch.testing.assert_close(action, 2 * torch.tanh(mean + noise))
    assert [torch.equal(a, b) for a, b in zip(draws, draws[1:])] == [True, True, False, True, True, False]
    assert not torch.equal(draws[0][0], draws[0][1])  # each env its own matrix
    # the deterministic action is the mean's, clipped to +-2 before tanh
    torch.testing.assert_close(agent.act(obs, explore=False), 2 * torch.tanh(mean))
    assert mean.abs().max() <= 2.0

    _, log_std = agent.actor(obs)
    torch.testing.assert_close(log_std.exp(), (features.square() @ sigma.square() + 1e-6).sqrt())
    log_std.sum().backward()
    assert agent.actor.gsde_log_std.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in agent.actor.body.parameters())
    zero_grads(agent.actor)
    actor_loss, _ = assert_loss_shape(agent.actor_loss(torch.randn(64, 3)))
    actor_loss.backward()
    assert all(grads_of(agent.actor))

    per_round = SAC(BOX_OBS, box, NET, CPU, gsde=-1, train_every=4)  # -1: one draw per round of updates
    eps = []
    for _ in range(5):
        per_round.act(obs, explore=True)
        eps.append(per_round.exploration.eps.clone())
    assert [torch.equal(a, b) for a, b in zip(eps, eps[1:])] == [True, True, True, False]


def test_sac_gsde_mean_past_its_clip_is_walked_back_by_the_actor_loss():
    """The clip of gSDE's mean to +-2 passes no gradient: a mean past it on every state would get none from the
    critic; the penalty sum_k max(|mu_k| - 2, 0)^2 in the actor's loss (zero inside the bound) pulls it back."""
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,), np.float32)
    agent = SAC(BOX_OBS, box, NET, CPU, gsde=-1)
    obs = torch.randn(32, 3)
    raw = agent.actor.body(obs)
    torch.testing.assert_close(agent.actor.mean_excess(obs), (raw.abs() - 2).clamp(min=0).square().sum(-1))
    assert raw.abs().max() < 2 and agent.actor.mean_excess(obs).sum() == 0  # inside: no penalty

    with torch.no_grad():  # push the mean past the clip everywhere: +5 on top of what it was
        agent.actor.body[-1].bias.add_(5.0)
    raw = agent.actor.body(obs)
    excess = (raw - 2).mean().item()
    assert raw.min() > 2 and agent.actor.features_and_mean(obs)[1].eq(2).all()
    optimizer = torch.optim.SGD(agent.actor.body[-1].parameters(), lr=0.05)
    for _ in range(20):
        loss, _ = agent.actor_loss(obs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (agent.actor.body(obs) - 2).mean().item() < 0.5 * excess  # back towards the bound


def test_sac_gsde_resumes_with_the_noise_it_held():
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,), np.float32)
    agent = SAC(BOX_OBS, box, NET, CPU, gsde=4)
    obs = torch.randn(2, 3)
    for _ in range(2):  # halfway through a hold, then the checkpoint
        agent.act(obs, explore=True)
    resumed = SAC(BOX_OBS, box, NET, CPU, gsde=4)
    resumed.load_state_dict(agent.state_dict())
    for _ in range(4):  # two more steps on the held noise, then a fresh draw from the same RNG state
        torch.manual_seed(1)
        expected = agent.act(obs, explore=True)
        torch.manual_seed(1)
        torch.testing.assert_close(resumed.act(obs, explore=True), expected)


def test_sac_anneal_lr_decays_every_rate_linearly_to_zero_over_the_runs_updates_and_resumes_on_the_curve():
    """total_steps 1000, 200 warm-up steps, 2 updates per 4 env steps: 200 rounds, 400 updates; before update k
    each rate is lr * (1 - k / 400)."""
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,), np.float32)
    rates = {"actor_lr": 1e-3, "critic_lr": 2e-3, "alpha_lr": 4e-3}
    schedule = {"learning_starts": 200, "train_every": 4, "gradient_steps": 2}
    agent = SAC(BOX_OBS, box, NET, CPU, **rates, **schedule, anneal_lr=True, total_steps=1000)
    assert agent.total_updates == 400
    for _ in range(100):
        agent.update(fake_offpolicy_batch(8, torch.rand(8, 1) * 2 - 1))
    # the 100th update ran at fraction 99 / 400
    for name, optimizer in agent.optimizers().items():
        assert optimizer.param_groups[0]["lr"] == pytest.approx(rates[f"{name}_lr"] * (1 - 99 / 400))
    resumed = SAC(BOX_OBS, box, NET, CPU, **rates, **schedule, anneal_lr=True, total_steps=1000)
    resumed.load_state_dict(agent.state_dict())
    resumed.update(fake_offpolicy_batch(8, torch.rand(8, 1) * 2 - 1))
    assert resumed.critic_optimizer.param_groups[0]["lr"] == pytest.approx(2e-3 * (1 - 100 / 400))
    constant = SAC(BOX_OBS, box, NET, CPU, **rates)  # the default: constant rates
    constant.update(fake_offpolicy_batch(8, torch.rand(8, 1) * 2 - 1))
    assert constant.alpha_optimizer.param_groups[0]["lr"] == 4e-3


def test_sac_anneal_lr_without_a_budget_is_one_clear_error():
    with pytest.raises(RltrainError, match="anneal_lr=true needs the run's total_steps"):
        SAC(BOX_OBS, gym.spaces.Box(-1, 1, (1,), np.float32), NET, CPU, anneal_lr=True)


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
        critic_loss, info = assert_loss_shape(agent.critic_loss(batch))
        assert set(info) == {"q_mean"}
        critic_loss.backward()
        assert all(grads_of(agent.critics)) and not any(grads_of(agent.actor))
        for target in (agent.actor_target, agent.critics_target):
            assert not any(p.grad is not None for p in target.parameters())
        zero_grads(agent.critics, agent.actor)
        actor_loss, _ = assert_loss_shape(agent.actor_loss(batch["obs"]))
        actor_loss.backward()
        assert all(grads_of(agent.actor))
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


ACTION_SPACES = ((gym.spaces.Discrete(3), True), (gym.spaces.Box(-1, 1, (2,), np.float32), False))


def test_a2c_loss_trains_actor_and_critic_for_both_action_kinds():
    torch.manual_seed(0)
    for action_space, discrete in ACTION_SPACES:
        agent = A2C(BOX_OBS, action_space, NET, CPU, total_steps=1000, num_envs=1, entropy_coef=0.01)
        loss, _ = assert_loss_shape(agent.loss(rollout_batch(agent, 16)))
        loss.backward()
        policy = agent.policy
        assert all(grads_of(policy.actor)) and all(grads_of(policy.critic))
        assert (policy.log_std.grad is None) if discrete else (policy.log_std.grad is not None)


def test_reinforce_loss_reaches_only_the_policy_and_the_value_fit_only_the_critic():
    torch.manual_seed(0)
    for action_space, _ in ACTION_SPACES:
        agent = Reinforce(BOX_OBS, action_space, NET, CPU, num_envs=1, baseline="value")
        batch = rollout_batch(agent, 16)
        loss, _ = assert_loss_shape(agent.loss(batch))
        loss.backward()
        assert all(grads_of(agent.policy.actor)) and not any(grads_of(agent.policy.critic))
        before = [p.detach().clone() for p in agent.policy.actor.parameters()]
        agent.fit_value(batch)
        assert all(torch.equal(a, b) for a, b in zip(before, agent.policy.actor.parameters()))


def test_reinforce_baselines_change_the_advantages_as_the_notes_define_them():
    agent = Reinforce(BOX_OBS, gym.spaces.Discrete(2), NET, CPU, num_envs=1, baseline="none", scale_advantages=False)
    batch = {"obs": torch.randn(3, 3), "returns": torch.tensor([3.0, 2.0, 1.0])}
    assert agent.advantages(batch).tolist() == [3.0, 2.0, 1.0]
    agent.baseline = "mean"
    assert agent.advantages(batch).tolist() == [1.0, 0.0, -1.0]
    assert Reinforce(BOX_OBS, gym.spaces.Discrete(2), NET, CPU, num_envs=1, baseline="none").policy.critic is None


def test_conjugate_gradient_matches_a_direct_solve():
    generator = torch.Generator().manual_seed(0)
    m = torch.randn(20, 20, generator=generator, dtype=torch.float64)
    a = m @ m.T + 0.1 * torch.eye(20, dtype=torch.float64)  # symmetric positive definite
    b = torch.randn(20, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=100, tolerance=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("action_space", [space for space, _ in ACTION_SPACES], ids=["discrete", "box"])
def test_trpo_fisher_product_is_the_kl_hessian_and_the_step_respects_the_trust_region(action_space):
    torch.manual_seed(0)
    agent = TRPO(BOX_OBS, action_space, {"hidden": [4], "activation": "tanh"}, CPU, num_envs=1, max_kl=0.01)
    batch = rollout_batch(agent, 64)
    params = agent.policy_params
    with torch.no_grad():
        old = agent.policy.distribution(batch["obs"])
    fvp = agent.fisher_vector_product(batch["obs"], old)
    # F against torch's Hessian of the mean KL as a function of the flat policy parameters
    flat = torch.nn.utils.parameters_to_vector(params).detach()
    names = [name for name, _ in agent.policy.actor.named_parameters()]

    def kl_of(vector):
        tensors = list(torch.split(vector, [p.numel() for p in params]))
        tensors = [t.view_as(p) for t, p in zip(tensors, params)]
        out = torch.func.functional_call(agent.policy.actor, dict(zip(names, tensors)), (batch["obs"],))
        if agent.policy.discrete:
            return kl_divergence(old, Categorical(logits=out)).mean()
        return kl_divergence(old, Normal(out, tensors[-1].exp())).sum(-1).mean()

    hessian = torch.autograd.functional.hessian(kl_of, flat)
    v = torch.randn_like(flat)
    torch.testing.assert_close(fvp(v), hessian @ v + agent.cg_damping * v, rtol=1e-3, atol=1e-5)

    objective, _ = assert_loss_shape(agent.surrogate(batch, batch["advantages"]))
    metrics = agent.natural_gradient_step(batch)
    assert metrics["kl"] <= 0.01
    if metrics["line_search_accepted"]:
        assert metrics["surrogate_improvement"] > 0
    assert metrics["line_search_accepted"] or torch.equal(torch.nn.utils.parameters_to_vector(params), flat)


def test_c51_projection_matches_a_hand_worked_example():
    support = torch.tensor([-1.0, 0.0, 1.0])
    next_probs = torch.tensor([[0.2, 0.3, 0.5]] * 3)
    rewards = torch.tensor([0.5, 5.0, -0.25])
    discounts = torch.tensor([0.5, 0.9, 0.0])
    projected = project_distribution(next_probs, rewards, discounts, support)
    # row 0: atoms move to 0, 0.5, 1: 0.2 on atom 0; 0.3 split evenly between 0 and 1; 0.5 on atom 1
    # row 1: every atom lands above v_max and is clipped onto it
    # row 2: terminal (discount 0): all mass at -0.25, split 0.25 / 0.75 between atoms -1 and 0
    expected = torch.tensor([[0.0, 0.35, 0.65], [0.0, 0.0, 1.0], [0.25, 0.75, 0.0]])
    torch.testing.assert_close(projected, expected)


def test_c51_loss_is_a_cross_entropy_that_trains_only_the_online_network():
    torch.manual_seed(0)
    for double, dueling in ((False, False), (True, True)):
        agent = C51(BOX_OBS, gym.spaces.Discrete(3), NET, CPU, 1000, atoms=11, double=double, dueling=dueling)
        batch = fake_offpolicy_batch(32, torch.randint(0, 3, (32,)))
        loss, info = assert_loss_shape(agent.loss(batch))
        assert loss > 0 and info["q_mean"].abs() <= 10
        loss.backward()
        assert all(grads_of(agent.q)) and all(p.grad is None for p in agent.q_target.parameters())
        metrics = agent.update(batch)
        assert torch.isfinite(metrics["td"])


def test_dueling_head_is_value_plus_centered_advantage():
    torch.manual_seed(0)
    q = QNetwork(3, 4, [16, 16], "relu", dueling=True)
    obs = torch.randn(5, 3)
    features = q.trunk(obs)
    value, advantages = q.value_head(features), q.advantage_head(features)
    torch.testing.assert_close(q(obs), value + advantages - advantages.mean(-1, keepdim=True))
    torch.testing.assert_close(q(obs).mean(-1), value.squeeze(-1))


@pytest.mark.parametrize("dueling", [False, True])
def test_layer_norm_bounds_q_whatever_the_input_scale(dueling):
    """With layer_norm the features feeding the output layer(s) are ReLU(LayerNorm(h)): LayerNorm's output has norm
    exactly sqrt(width) at its initial gain 1 and bias 0 and ReLU only shrinks it, so by Cauchy-Schwarz
    |Q(s, a)| <= sqrt(width) * |w_a| + |b_a| for any input (dueling: the same bound on V and on each A). Without it Q
    grows with the input."""
    torch.manual_seed(0)
    width, actions = 16, 4
    obs = 1e4 * torch.randn(64, 3)
    normed = QNetwork(3, actions, [width, width], "relu", dueling=dueling, layer_norm=True)
    plain = QNetwork(3, actions, [width, width], "relu", dueling=dueling)
    leaves = [m for m in normed.modules() if not list(m.children())]
    activations = [i for i, m in enumerate(leaves) if isinstance(m, torch.nn.ReLU)]
    assert len(activations) == 2 and all(isinstance(leaves[i - 1], torch.nn.LayerNorm) for i in activations)
    features = normed.trunk(obs) if dueling else normed.body[:-1](obs)
    assert features.shape == (64, width) and (features.norm(dim=1) <= width**0.5 + 1e-4).all()
    heads = [normed.value_head[0], normed.advantage_head[0]] if dueling else [normed.body[-1]]
    bounds = [width**0.5 * head.weight.norm(dim=1) + head.bias.abs() for head in heads]
    bound = bounds[0] + bounds[1] + bounds[1].mean() if dueling else bounds[0]  # Q = V + A - mean A
    assert (normed(obs).abs() <= bound + 1e-3).all()
    assert plain(obs).abs().max() > 10 * bound.max()


def test_ensemble_layer_norm_bounds_each_critic_and_keeps_the_members_apart():
    """QEnsemble(layer_norm=True): each member's last features are ReLU(LayerNorm(h)), so |Q_i(s, a)| <= sqrt(width)
    |w_i| + |b_i| for any input, as for QNetwork above; each member has its own gain, so changing member 1's moves
    only member 1's Q."""
    torch.manual_seed(0)
    width, members = 16, 3
    obs, actions = 1e4 * torch.randn(64, 3), torch.rand(64, 2) * 2 - 1
    normed = QEnsemble(members, 3, 2, [width, width], "relu", layer_norm=True)
    plain = QEnsemble(members, 3, 2, [width, width], "relu")
    layers = list(normed.body)
    activations = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.ReLU)]
    assert len(activations) == 2 and all(isinstance(layers[i - 1], EnsembleLayerNorm) for i in activations)
    features = normed.body[:-1](torch.cat([obs, actions], -1).expand(members, -1, -1))
    assert (features.norm(dim=-1) <= width**0.5 + 1e-4).all()
    head = normed.body[-1]
    bound = width**0.5 * head.weight.norm(dim=1) + head.bias.abs().squeeze(-1)  # [members, 1]
    q = normed(obs, actions)
    assert q.shape == (members, 64) and (q.abs() <= bound + 1e-3).all()
    assert plain(obs, actions).abs().max() > 10 * bound.max()
    with torch.no_grad():
        layers[activations[-1] - 1].weight[1] *= 2.0
    moved = normed(obs, actions)
    assert torch.equal(moved[0], q[0]) and torch.equal(moved[2], q[2]) and not torch.allclose(moved[1], q[1])


def test_dueling_double_dqn_loss_trains_trunk_and_both_heads():
    torch.manual_seed(0)
    agent = DQN(BOX_OBS, gym.spaces.Discrete(3), NET, CPU, total_steps=1000, double=True, dueling=True)
    loss, _ = assert_loss_shape(agent.loss(fake_offpolicy_batch(32, torch.randint(0, 3, (32,)))))
    loss.backward()
    assert all(grads_of(agent.q)) and all(p.grad is None for p in agent.q_target.parameters())
