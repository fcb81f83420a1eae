"""IQL and AWR: their losses against hand computations on fake datasets (expectile loss, TD(lambda) and Monte-Carlo
returns with truncated and terminated ends, weight clipping), gradients reaching only their own networks, actions
inside the Box, checkpoint round trips (what they reach on Pendulum medium-replay against BC: the slow test of
tests/test_offline_critics.py, shared by every offline algorithm)."""

import math

import gymnasium as gym
import pytest
import torch

from rltrain import datasets
from rltrain.algos.awr import AWR, episode_grid, lambda_returns
from rltrain.algos.iql import IQL, expectile_loss
from rltrain.errors import RltrainError
from rltrain.networks import EnsembleLayerNorm
from rltrain.trainer import Trainer

NETWORK = {"hidden": [32, 32], "activation": "relu"}
CPU = torch.device("cpu")
CARTPOLE, PENDULUM = gym.make("CartPole-v1"), gym.make("Pendulum-v1")


def fake_dataset(env: gym.Env, lengths=(16, 16, 16, 16), terminated_last=(False, True, False, True)):
    """Episodes back to back with random observations and rewards; each ends terminated or truncated."""
    torch.manual_seed(0)
    n = sum(lengths)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    obs = torch.randn(n, *env.observation_space.shape)
    ends = torch.cumsum(torch.tensor(lengths), 0) - 1
    terminated, truncated = torch.zeros(n), torch.zeros(n)
    for end, term in zip(ends.tolist(), terminated_last):
        (terminated if term else truncated)[end] = 1.0
    return datasets.Dataset(
        id="fake/env/fake-v0",
        obs=obs,
        actions=torch.randint(0, 2, (n,)) if discrete else torch.rand(n, 1) * 4 - 2,
        rewards=torch.randn(n),
        next_obs=obs + 0.1,
        terminated=terminated,
        truncated=truncated,
        episode=torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths)),
        episode_returns=torch.zeros(len(lengths)),
        episode_lengths=torch.tensor(lengths),
        observation_space=env.observation_space,
        action_space=env.action_space,
    )


def iql(env, data=None, **kwargs) -> IQL:
    return IQL(env.observation_space, env.action_space, NETWORK, CPU, 1000, data, **kwargs)


def awr(env, data=None, **kwargs) -> AWR:
    return AWR(env.observation_space, env.action_space, NETWORK, CPU, data, **kwargs)


def grads(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def zero_grads(*modules) -> None:
    for module in modules:
        module.zero_grad(set_to_none=True)


# --- IQL ---------------------------------------------------------------------------------------------------------
def test_expectile_loss_equals_the_hand_computation():
    diff = torch.tensor([2.0, -1.0, 0.5, -3.0])
    # weights 0.7 for positive differences, 0.3 for negative: (0.7*4 + 0.3*1 + 0.7*0.25 + 0.3*9) / 4
    assert expectile_loss(diff, 0.7).item() == pytest.approx((2.8 + 0.3 + 0.175 + 2.7) / 4)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * diff.square().mean().item())


def test_iql_value_loss_is_the_expectile_of_target_q_minus_v():
    data = fake_dataset(PENDULUM)
    agent = iql(PENDULUM, data, expectile=0.9)
    batch = data.sample(64)
    loss, info = agent.value_loss(batch)
    with torch.no_grad():
        q = agent.q_target(batch["obs"], agent.actor.unit_actions(batch["actions"]))
        u = q - agent.v(batch["obs"])
    torch.testing.assert_close(info["advantage"], u)
    torch.testing.assert_close(loss.detach(), expectile_loss(u, 0.9))


@pytest.mark.parametrize("env", [PENDULUM, CARTPOLE])
def test_iql_losses_train_only_their_own_network(env):
    data = fake_dataset(env)
    agent = iql(env, data)
    batch = data.sample(64)
    nets = {"value": agent.value, "critics": agent.critics, "actor": agent.actor}
    for name, (loss, info) in {
        "value": agent.value_loss(batch),
        "critics": agent.critic_loss(batch),
        "actor": agent.actor_loss(batch, agent.value_loss(batch)[1]["advantage"]),
    }.items():
        zero_grads(*nets.values())
        assert loss.ndim == 0 and torch.isfinite(loss) and all(torch.isfinite(v).all() for v in info.values())
        loss.backward()
        assert {n for n, net in nets.items() if grads(net)} == {name}
        assert not grads(agent.critics_target)


def test_iql_layer_norm_normalizes_every_hidden_layer_of_q_and_v_only():
    data = fake_dataset(PENDULUM)
    for layer_norm, per_net in ((False, 0), (True, len(NETWORK["hidden"]))):
        agent = iql(PENDULUM, data, layer_norm=layer_norm)
        for net, norm in ((agent.critics, EnsembleLayerNorm), (agent.value, torch.nn.LayerNorm)):
            assert sum(isinstance(m, norm) for m in net.modules()) == per_net
        assert not any(isinstance(m, (torch.nn.LayerNorm, EnsembleLayerNorm)) for m in agent.actor.modules())
        assert torch.isfinite(torch.stack(list(agent.update(data.sample(32)).values()))).all()


def test_iql_weights_are_clipped_at_max_weight():
    data = fake_dataset(PENDULUM)
    agent = iql(PENDULUM, data, beta=3.0, max_weight=5.0)
    batch = data.sample(4)
    advantage = torch.tensor([-1.0, 0.0, 0.5, 10.0])  # exp(3 A): 0.05, 1, 4.48, e^30
    _, info = agent.actor_loss(batch, advantage)
    assert info["weight_max"].item() == 5.0 and info["weight_clipped_fraction"].item() == 0.25
    assert info["weight_mean"].item() == pytest.approx(
        (torch.exp(torch.tensor(-3.0)).item() + 1 + 4.4817 + 5) / 4, 1e-4
    )


def test_iql_actor_dropout_acts_on_the_fit_only_and_bad_rates_are_refused():
    data = fake_dataset(PENDULUM)
    batch = data.sample(64)
    plain, dropped = iql(PENDULUM, data), iql(PENDULUM, data, policy="deterministic", actor_dropout=0.5)
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.actor.modules())
    assert sum(isinstance(m, torch.nn.Dropout) for m in dropped.actor.modules()) == len(NETWORK["hidden"])
    # fitting: two passes over the same batch drop different units; acting: the whole network, every time
    first, second = (dropped.actor.log_likelihood(batch["obs"], batch["actions"]) for _ in range(2))
    assert not torch.equal(first, second)
    torch.testing.assert_close(dropped.act(batch["obs"], False), dropped.act(batch["obs"], False))
    without_dropout = torch.nn.Sequential(*[m for m in dropped.actor.body if not isinstance(m, torch.nn.Dropout)])
    with torch.no_grad():
        mu = torch.tanh(without_dropout(dropped.actor.normalize(batch["obs"])))
    torch.testing.assert_close(dropped.actor.mode(batch["obs"]), mu)
    for rate in (-0.1, 1.0):
        with pytest.raises(RltrainError, match="actor_dropout"):
            iql(PENDULUM, data, actor_dropout=rate)


@pytest.mark.parametrize("env", [PENDULUM, CARTPOLE])
def test_iql_updates_log_q_of_dataset_and_policy_actions_and_anneal_the_actor_lr(env):
    data = fake_dataset(env)
    agent = iql(env, data, actor_lr=1e-3)
    for _ in range(10):
        metrics = agent.update(data.sample(32))
    assert {"value", "critic", "actor", "q_data", "q_policy", "v_mean", "weight_mean"} <= set(metrics)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())
    assert 0 < metrics["actor_lr"].item() < 1e-3  # the cosine over total_steps=1000 has begun


# --- AWR ---------------------------------------------------------------------------------------------------------
def test_lambda_returns_equal_the_hand_computation_with_a_truncated_and_a_terminated_end():
    # episode 0: three steps, truncated at its end (bootstrapped with V(s')); episode 1: two steps, terminated
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    next_values = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0])
    terminated = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    grid = episode_grid(torch.tensor([0, 0, 0, 1, 1]), torch.tensor([3, 2]))
    assert grid.tolist() == [[0, 1, 2], [3, 4, -1]]
    gamma = 0.5
    # lambda 0.5: G2 = 3 + .5*30 = 18; G1 = 2 + .5*(.5*20 + .5*18) = 11.5; G0 = 1 + .5*(.5*10 + .5*11.5) = 6.375
    #             G4 = 5 (terminated: nothing after it); G3 = 4 + .5*(.5*40 + .5*5) = 15.25
    expected = [6.375, 11.5, 18.0, 15.25, 5.0]
    assert lambda_returns(rewards, next_values, terminated, grid, gamma, 0.5).tolist() == expected
    # Monte-Carlo (lambda 1): rewards to go, plus gamma^k V(s') only at the truncated end
    assert lambda_returns(rewards, next_values, terminated, grid, gamma, 1.0).tolist() == [6.5, 11.0, 18.0, 6.5, 5.0]
    # lambda 0: one-step TD targets
    assert lambda_returns(rewards, next_values, terminated, grid, gamma, 0.0).tolist() == [6.0, 12.0, 18.0, 24.0, 5.0]


def test_awr_weights_are_the_clipped_exponentiated_standardized_advantages():
    data = fake_dataset(PENDULUM, lengths=(5, 9, 3), terminated_last=(True, False, False))
    agent = awr(PENDULUM, data, beta=0.2, max_weight=3.0, td_lambda=0.9)
    agent.refresh()
    with torch.no_grad():
        values, next_values = agent.v(data.obs), agent.v(data.next_obs)
    returns = lambda_returns(data.rewards, next_values, data.terminated, agent.grid, agent.gamma, 0.9)
    torch.testing.assert_close(agent.returns, returns)
    advantages = returns - values
    standardized = (advantages - advantages.mean()) / (advantages.std() + 1e-5)
    torch.testing.assert_close(agent.weights, torch.exp(standardized / 0.2).clamp(max=3.0))
    assert agent.weights.max().item() == 3.0 and (agent.weights < 3.0).any()


@pytest.mark.parametrize("env", [PENDULUM, CARTPOLE])
def test_awr_losses_train_only_their_own_network_on_the_batch_index(env):
    data = fake_dataset(env)
    agent = awr(env, data)
    agent.refresh()
    batch = data.sample(64)
    torch.testing.assert_close(batch["obs"], data.obs[batch["index"]])
    value_loss, _ = agent.value_loss(batch["obs"], agent.returns[batch["index"]])
    value_loss.backward()
    assert grads(agent.value) and not grads(agent.actor)
    zero_grads(agent.value, agent.actor)
    actor_loss, _ = agent.actor_loss(batch["obs"], batch["actions"], agent.weights[batch["index"]])
    actor_loss.backward()
    assert grads(agent.actor) and not grads(agent.value)
    for _ in range(5):
        metrics = agent.update(data.sample(32))
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())


# --- both ----------------------------------------------------------------------------------------------------------
BUILDERS = {"iql": iql, "awr": awr}


@pytest.mark.parametrize("algo", BUILDERS)
@pytest.mark.parametrize("policy", ["deterministic", "gaussian"])
def test_actions_stay_inside_the_box(algo, policy):
    agent = BUILDERS[algo](PENDULUM, fake_dataset(PENDULUM), policy=policy)
    obs = torch.randn(500, 3) * 100
    for explore in (True, False):
        actions = agent.act(obs, explore)
        assert actions.shape == (500, 1) and actions.min() >= -2.0 and actions.max() <= 2.0
    discrete = BUILDERS[algo](CARTPOLE, fake_dataset(CARTPOLE)).act(torch.randn(50, 4), True)
    assert discrete.dtype == torch.long and set(discrete.tolist()) <= {0, 1}


@pytest.mark.parametrize("algo", BUILDERS)
def test_checkpoint_round_trip_into_an_agent_built_without_its_dataset(algo):
    data = fake_dataset(PENDULUM)
    agent = BUILDERS[algo](PENDULUM, data, policy="gaussian")
    for _ in range(20):
        agent.update(data.sample(32))
    state = agent.state_dict()
    restored = BUILDERS[algo](
        PENDULUM, policy="gaussian"
    )  # as rltrain-eval builds it: no dataset, statistics from the checkpoint
    restored.load_state_dict(state)
    obs = torch.randn(16, 3)
    torch.testing.assert_close(restored.act(obs, False), agent.act(obs, False))
    torch.testing.assert_close(restored.actor.obs_mean, data.obs.mean(0))
    assert restored.updates_done == 20
    if algo == "iql":
        assert restored.actor_optimizer.param_groups[0]["lr"] == agent.actor_optimizer.param_groups[0]["lr"]
        torch.testing.assert_close(restored.critics_target(obs, obs[:, :1]), agent.critics_target(obs, obs[:, :1]))


@pytest.mark.parametrize("algo", BUILDERS)
def test_a_resumed_run_continues_from_its_checkpoint(algo, tmp_path, monkeypatch):
    """Through the Trainer, on a recorded random Pendulum dataset: 64 updates, then resume=... to 128."""
    from conftest import compose_config, tiny
    from rltrain import checkpoint
    from rltrain.collect import main as collect

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    collect(["id=test/pendulum/random-v0", "env=Pendulum-v1", "episodes=2", "ref_episodes=2", "ref_max=-150"])
    config = tiny(compose_config(f"algo={algo}", "env=pendulum", "dataset=test/pendulum/random-v0"), 64)
    config["algo"]["batch_size"] = 32
    Trainer(config, tmp_path / "run").run()
    payload = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["step"] == 64 and payload["agent"]["updates_done"] == 64
    payload["config"]["total_steps"] = 128
    resumed = Trainer(payload["config"], tmp_path / "run", resume=payload)
    assert resumed.agent.updates_done == 64
    summary = resumed.run()
    assert summary["env_steps"] == 128 and resumed.agent.updates_done == 128
    if algo == "iql":  # the cosine stretched to the new budget: update 128 of 128 stepped at its last, small rate
        last_rate = config["algo"]["actor_lr"] * (1 + math.cos(math.pi * 127 / 128)) / 2
        assert resumed.agent.actor_optimizer.param_groups[0]["lr"] == pytest.approx(last_rate)
    assert summary["dataset"] == "test/pendulum/random-v0" and summary["normalized_score"] is not None
