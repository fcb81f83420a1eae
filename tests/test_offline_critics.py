"""CQL, SAC-N and EDAC: their penalties on hand-computed cases, losses on fake batches (finite, reaching only their
own networks), conservatism that shows, actions inside the box, and checkpoints that act the same after loading;
resumed runs that end where uninterrupted ones do (IQL with actor dropout too); and (slow) what every offline preset
reaches on its benchmark dataset (IQL and AWR too)."""

import math
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import compose_config, some_seed_reaches, tiny
from rltrain.algos.cql import CQL, logsumexp_gap
from rltrain.algos.edac import EDAC, ensemble_similarity
from rltrain.errors import RltrainError
from rltrain.networks import QEnsemble
from rltrain.trainer import Trainer
from test_losses import assert_loss_shape, fake_offpolicy_batch, grads_of

NET = {"hidden": [32, 32], "activation": "relu"}
CPU = torch.device("cpu")
OBS = gym.spaces.Box(-1, 1, (3,), np.float32)
BOX = gym.spaces.Box(-2, 2, (1,), np.float32)
DISCRETE = gym.spaces.Discrete(3)


def box_cql(**kwargs) -> CQL:
    return CQL(OBS, BOX, NET, CPU, 1000, **kwargs)


def linear_critics(members: int, obs_dim: int, act_dim: int, weights: list[list[float]]) -> QEnsemble:
    """Q_i(s, a) = weights[i] . [s, a]: critics without hidden layers, with chosen weights and zero biases."""
    critics = QEnsemble(members, obs_dim, act_dim, [], "relu")
    with torch.no_grad():
        critics.body[0].weight.copy_(torch.tensor(weights).unsqueeze(-1))
        critics.body[0].bias.zero_()
    return critics


# --- hand-computed values ---------------------------------------------------------------------------------------
def test_logsumexp_gap_matches_a_hand_computation():
    # Q(s, .) = 1, 2, 3 and the dataset took the first action: log(e + e^2 + e^3) - 1
    gap = logsumexp_gap(torch.tensor([1.0]), torch.tensor([[1.0, 2.0, 3.0]]), 0.0)
    torch.testing.assert_close(gap, torch.tensor([math.log(math.e + math.e**2 + math.e**3) - 1.0]))
    # importance weights and a temperature: T log sum_k exp((Q_k - log mu_k) / T) - Q_data with T = 2
    q, log_mu = torch.tensor([[0.0, 2.0]]), torch.tensor([[math.log(0.5), math.log(2.0)]])
    expected = 2 * math.log(math.exp((0 - math.log(0.5)) / 2) + math.exp((2 - math.log(2.0)) / 2)) - 0.5
    torch.testing.assert_close(logsumexp_gap(torch.tensor([0.5]), q, log_mu, 2.0), torch.tensor([expected]))


def test_discrete_cql_adds_the_exact_logsumexp_gap_to_the_dqn_loss():
    torch.manual_seed(0)
    agent = CQL(OBS, DISCRETE, NET, CPU, 1000, cql_alpha=2.0)
    batch = fake_offpolicy_batch(16, torch.randint(0, 3, (16,)))
    loss, info = assert_loss_shape(agent.critic_loss(batch))
    q = agent.dqn.q(batch["obs"]).detach()
    q_data = q[torch.arange(16), batch["actions"]]
    gap = (torch.logsumexp(q, -1) - q_data).mean()
    td, _ = agent.dqn.loss(batch)
    torch.testing.assert_close(info["cql_gap"], gap)
    torch.testing.assert_close(loss.detach(), td.detach() + 2.0 * gap)
    torch.testing.assert_close(info["q_policy"], q.max(-1).values.mean())
    loss.backward()
    assert all(grads_of(agent.dqn.q)) and not any(p.grad is not None for p in agent.dqn.q_target.parameters())


def test_box_cql_gap_importance_samples_random_current_and_next_policy_actions(monkeypatch):
    """Q_i(s, a) = s_0 for both critics (any action), the policy's samples given log-densities log 0.5 at s and 0 at
    s' (next_obs have s_0 >= 50): each state's gap is log sum_k exp(Q - log mu_k) - Q with n_actions = 2 samples of
    each proposal, log(2 * 2 + 2 * 2 + 2 * 1) = log 10 for every state, whatever the actions were."""
    agent = box_cql(n_actions=2)
    agent.sac.critics = linear_critics(2, 3, 1, [[1, 0, 0, 0], [1, 0, 0, 0]])
    agent.sac.critics_target = linear_critics(2, 3, 1, [[1, 0, 0, 0], [1, 0, 0, 0]])

    def sample(obs):
        log_density = torch.where(obs[:, 0] < 50, math.log(0.5), 0.0)
        return torch.rand(obs.shape[0], 1) * 2 - 1, log_density

    monkeypatch.setattr(agent.sac.actor, "sample", sample)
    batch = fake_offpolicy_batch(8, torch.rand(8, 1) * 4 - 2)
    batch["obs"][:, 0] = torch.arange(8.0)  # distinct Q per state: a sample scored at another state would show
    batch["next_obs"][:, 0] = 100.0
    _, info = agent.critic_loss(batch)
    torch.testing.assert_close(info["cql_gap"], torch.tensor(math.log(10.0)))
    torch.testing.assert_close(info["q_data"], torch.tensor(3.5))


def test_ensemble_similarity_matches_a_hand_computation():
    # grad_a Q_i = (1, 0), (0, 1), (1, 1): cosines 0, 1/sqrt 2, 1/sqrt 2; each pair counts twice, / (N - 1) = 2
    critics = linear_critics(3, 2, 2, [[0.3, 0, 1, 0], [0, 0.1, 0, 1], [0, 0, 1, 1]])
    similarity = ensemble_similarity(critics, torch.randn(5, 2), torch.randn(5, 2))
    torch.testing.assert_close(similarity, torch.tensor(math.sqrt(2.0)))


def test_identical_critics_are_maximally_similar_and_get_no_gradient_from_it():
    """ES is N for identical critics (every cosine is 1), and the maximum of a cosine is flat: the term only pushes
    apart critics that already differ, which is why EDAC's critics start from different random weights."""
    critics = QEnsemble(4, 3, 2, [16], "tanh")
    with torch.no_grad():
        for layer in (critics.body[0], critics.body[2]):
            layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
            layer.bias.copy_(layer.bias[:1].expand_as(layer.bias))
    similarity = ensemble_similarity(critics, torch.randn(32, 3), torch.randn(32, 2))
    torch.testing.assert_close(similarity, torch.tensor(4.0))
    similarity.backward()
    assert all(p.grad is None or p.grad.abs().max() < 1e-5 for p in critics.parameters())  # None: no effect on ES


def test_with_one_action_dimension_the_similarity_has_no_gradient():
    """A 1-D gradient's direction is +1 or -1: ES is piecewise constant in the critics' parameters (up to the 1e-10
    that keeps the division finite), so EDAC on a 1-D action space (Pendulum) trains as SAC-N. With 3 action
    dimensions the same kind of critics gets a gradient 1e5 times larger or more."""
    torch.manual_seed(0)
    grad_sizes = {}
    for act_dim in (1, 3):
        critics = QEnsemble(5, 3, act_dim, [32, 32], "relu")
        ensemble_similarity(critics, torch.randn(64, 3), torch.rand(64, act_dim) * 2 - 1).backward()
        grad_sizes[act_dim] = sum(float(p.grad.abs().sum()) for p in critics.parameters() if p.grad is not None)
    assert grad_sizes[3] > 1.0 and grad_sizes[1] < 1e-5 * grad_sizes[3]


# --- losses on fake batches -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lagrange", [False, True])
def test_box_cql_critic_loss_is_finite_and_reaches_only_the_critics(lagrange):
    torch.manual_seed(0)
    agent = box_cql(lagrange=lagrange)
    loss, info = assert_loss_shape(agent.critic_loss(fake_offpolicy_batch(32, torch.rand(32, 1) * 4 - 2)))
    assert {"td", "cql_gap", "q_data", "gaps"} <= set(info) and info["gaps"].shape == (2,)
    loss.backward()
    assert all(grads_of(agent.sac.critics))
    assert not any(p.grad is not None for p in agent.sac.actor.parameters())
    assert not any(p.grad is not None for p in agent.sac.critics_target.parameters())
    assert agent.sac.log_alpha.grad is None and agent.log_alpha_prime.grad is None


def test_edac_critic_loss_adds_eta_times_the_similarity_and_reaches_only_the_critics():
    torch.manual_seed(0)
    agent = EDAC(OBS, BOX, NET, CPU, critics=5, eta=0.5)
    batch = fake_offpolicy_batch(32, torch.rand(32, 1) * 4 - 2)
    loss, info = assert_loss_shape(agent.critic_loss(batch))
    torch.testing.assert_close(loss.detach(), info["td"] + 0.5 * info["ensemble_similarity"])
    loss.backward()
    assert all(grads_of(agent.sac.critics))
    assert not any(p.grad is not None for p in agent.sac.actor.parameters()) and agent.sac.log_alpha.grad is None
    sac_n = EDAC(OBS, BOX, NET, CPU, critics=5, eta=0.0)
    assert "ensemble_similarity" not in sac_n.critic_loss(batch)[1]
    with pytest.raises(RltrainError, match="algo.critics=1"):
        EDAC(OBS, BOX, NET, CPU, critics=1, eta=1.0)


@pytest.mark.parametrize("make", [lambda: box_cql(lagrange=True), lambda: EDAC(OBS, BOX, NET, CPU, critics=3)])
def test_updates_log_finite_q_estimates_and_actions_stay_inside_the_box(make):
    torch.manual_seed(0)
    agent = make()
    batch = fake_offpolicy_batch(32, torch.rand(32, 1) * 4 - 2)
    for _ in range(3):
        metrics = agent.update(batch)
    assert {"q_data", "q_policy", "alpha", "critic", "actor"} <= set(metrics)
    assert all(math.isfinite(float(v)) for v in metrics.values())
    for explore in (True, False):
        actions = agent.act(torch.randn(200, 3) * 10, explore=explore)
        assert actions.shape == (200, 1) and actions.min() >= -2 and actions.max() <= 2


def test_cql_keeps_q_of_out_of_data_actions_below_q_of_the_dataset_actions():
    """The same updates on data whose actions are all +1.5, with and without the penalty: CQL's Q at the dataset's
    action ends well above its Q at uniformly random actions; the unpenalized critics have no such gap."""
    gaps = {}
    for cql_alpha in (0.0, 5.0):
        torch.manual_seed(0)
        agent = box_cql(cql_alpha=cql_alpha, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
        batch = fake_offpolicy_batch(128, torch.full((128, 1), 1.5))
        for _ in range(150):
            agent.update(batch)
        with torch.no_grad():
            obs = agent.normalize(batch["obs"])
            data = agent.sac.critics(obs, torch.full((128, 1), 0.75)).mean()
            elsewhere = agent.sac.critics(obs, torch.rand(128, 1) * 2 - 1).mean()
        gaps[cql_alpha] = float(data - elsewhere)
    assert gaps[5.0] > 1.0 and gaps[5.0] > gaps[0.0] + 1.0, gaps


def test_lagrange_weight_rises_above_the_target_gap_and_falls_below_it():
    torch.manual_seed(0)
    batch = fake_offpolicy_batch(32, torch.rand(32, 1) * 4 - 2)
    for target_gap, direction in ((-100.0, 1), (100.0, -1)):
        agent = box_cql(lagrange=True, target_gap=target_gap)
        metrics = agent.update(batch)
        assert direction * float(agent.log_alpha_prime.detach()) > 0  # log alpha' starts at 0
        assert float(metrics["cql_weight"]) == pytest.approx(10.0)  # the weight this update used: alpha' = 1


# --- checkpoints through a run ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        ("algo=cql", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.lagrange=true"),
        ("algo=cql", "env=cartpole", "dataset=test/cartpole/random-v0"),
        ("algo=edac", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.critics=3"),
        ("algo=sac_n", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.critics=2"),
    ],
    ids=["cql-box", "cql-discrete", "edac", "sac_n"],
)
def test_checkpoint_round_trip_restores_the_agent_and_its_actions(tiny_datasets, tmp_path, overrides):
    from rltrain import checkpoint
    from rltrain.evaluate import load_agent

    config = tiny(compose_config(*overrides, "algo.batch_size=16"), 30)
    trainer = Trainer(config, tmp_path / "run")
    summary = trainer.run()
    assert summary["step_unit"] == "updates" and summary["env_steps"] == 30
    agent, *_ = load_agent(tmp_path / "run" / "checkpoints" / "last.pt", "cpu")
    obs = torch.randn(5, *trainer.agent.normalize.mean.shape) * 3
    torch.testing.assert_close(agent.act(obs, explore=False), trainer.agent.act(obs, explore=False))
    saved = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")["agent"]
    torch.testing.assert_close(agent.normalize.state_dict(), saved["normalize"])
    assert float(trainer.agent.normalize.std.min()) != 1.0  # the dataset's statistics, not the identity
    learner = saved.get("learner", saved.get("sac"))
    assert learner["updates_done"] == 30


# --- learning thresholds on the offline benchmark datasets (`make datasets`) ---------------------------------------
SEEDS = (0, 1)
MEDIUM_REPLAY, CARTPOLE_REPLAY = "rltrain/pendulum/medium-replay-v0", "rltrain/cartpole/replay-v0"


def train_offline(tmp_path, *overrides: str) -> dict:
    config = compose_config(*overrides, "log.progress=false")
    assert config["eval"]["episodes"] >= 10
    summary = Trainer(config, tmp_path).run()
    assert summary["step_unit"] == "updates" and summary["env_steps"] <= 50_000
    return summary


# What each preset must reach on medium-replay within 5e4 updates: (lowest final return, normalized points
# above BC's preset on the same seed, the seeds tried in order until one passes, as in test_learning).
# Measured on `make datasets` seed 0 at the presets' budgets (README, Offline RL; `make offline-table` for 1e4 updates):
# CQL (cql_pendulum: weight 3, 5e3 updates) ended at -130.5 to -238.2 on avx512 and avx2 seeds 0-19 (the same
# returns on both) and at -131.3 to -286.2 on the default path, where seeds 15 and 18 missed (-286.2, -270.4; at
# 4e3 updates -226.2 and -256.4), and on an Intel Xeon's default path seeds 9 and 18 (-285.4, -261.3); robustness
# bench: 76 of 80 reach -250; BC about -15 to -20 normalized, CQL about 95. It tries seeds 0, 1, 2: with q = 5/82
# (Laplace, 76 of 80 runs) all three fail 0.023% of runs.
# EDAC (edac_pendulum: 10 critics, 3e3 updates; SAC-N on Pendulum's 1-D action) ended at -142.9, -206.8 and -259.2
# on seeds 0, 1 and 2 on avx512 and avx2 (the same returns on both) and at -179.6, -167.5, -247.2 on the default
# path; over seeds 0-19 57 of 60 runs reach -250 (19 of 20 on each path; min -347.3, medians -168 and -169), each
# about 100 points above BC. Its return peaks at 3e3 updates and falls after (the earlier 5e3 budget: 40 of 60),
# so the preset stops there. It tries seeds 0, 1, 2: with q = 4/62 (Laplace, 57 of 60 runs) all three fail 0.03%
# of runs.
# IQL (iql_pendulum: LayerNorm Q and V, deterministic policy, 5e4 updates), robustness bench: 60 of 68 runs reach
# -250 (avx512 25 of 28, default 16 of 20, avx2 19 of 20, on an AMD EPYC and an Intel Xeon; misses between -280 and
# -598); seeds 0 and 1 end at -160 and -196 on the AMD, -160 and -184 on the Intel, BC at -15 to -24 normalized,
# IQL about 90 to 95. It tries seeds 0-3: with q = 9/70 (Laplace, 60 of 68 runs) all four fail 0.03%
# of runs; the evaluation starts of neighbouring seeds overlap (README, the learning tests' paragraph), so that
# figure is optimistic. Before the LayerNorm (Gaussian policy, 2e4 updates) it ended at -745.3 and -703.9 on seeds
# 0 and 1.
# AWR (awr_pendulum, 2e4 updates) does not reach -300 (1e4 updates: -863.8, -944.9, -1018.6): one step of policy
# improvement over the data, V fitting the returns of the behaviour policies (a learning SAC's first 4,750 steps),
# it picks that data's better actions but cannot stitch a swing-up the data lacks; it guards 10 points above BC.
REACHES = {
    "cql": (-250.0, 20.0, (0, 1, 2)),
    "edac": (-250.0, 20.0, (0, 1, 2)),
    "iql": (-250.0, 20.0, (0, 1, 2, 3)),
    "awr": (-float("inf"), 10.0, SEEDS),
}


@pytest.mark.slow
@pytest.mark.parametrize("algo", sorted(REACHES))
def test_pendulum_medium_replay_beats_bc(offline_datasets, monkeypatch, tmp_path, algo):
    """The tuned preset on medium-replay against behaviour cloning's (its preset, same seed)."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", offline_datasets)
    lowest_return, points_above_bc, seeds = REACHES[algo]
    finals = {}
    for seed in seeds:
        common = ("env=pendulum", f"dataset={MEDIUM_REPLAY}", f"seed={seed}")
        summary = train_offline(tmp_path / f"{algo}_{seed}", f"algo={algo}", *common)
        bc = train_offline(tmp_path / f"bc_{seed}", "algo=bc", *common)
        finals[seed] = (summary["eval_return_mean"], summary["normalized_score"], bc["normalized_score"])
        reached = summary["eval_return_mean"] >= lowest_return
        if reached and summary["normalized_score"] >= bc["normalized_score"] + points_above_bc:
            return
    pytest.fail(f"no seed of {seeds} passed: (return, normalized score, BC's normalized score) per seed {finals}")


@pytest.mark.slow
def test_discrete_cql_reaches_475_on_the_cartpole_replay(offline_datasets, monkeypatch, tmp_path):
    monkeypatch.setenv("MINARI_DATASETS_PATH", offline_datasets)
    some_seed_reaches(
        475.0,
        SEEDS,
        lambda seed: train_offline(
            tmp_path / str(seed), "algo=cql", "env=cartpole", f"dataset={CARTPOLE_REPLAY}", f"seed={seed}"
        ),
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ("algo=cql", "env=pendulum", "dataset=test/pendulum/random-v0"),
        ("algo=cql", "env=cartpole", "dataset=test/cartpole/random-v0"),
        ("algo=edac", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.critics=3"),
        ("algo=iql", "env=pendulum", "dataset=test/pendulum/random-v0", "algo.actor_dropout=0.2"),
    ],
    ids=["cql-box", "cql-discrete", "edac", "iql-dropout"],
)
def test_a_resumed_run_ends_where_the_uninterrupted_run_ends(tiny_datasets, tmp_path, overrides):
    """40 updates in one go against a run of 40 stopped after 20 (as a stop signal does), then resume=<its
    last.pt>: the same learner, bit for bit."""
    from rltrain import checkpoint

    config = tiny(compose_config(*overrides, "algo.batch_size=16"), 40)
    straight = Trainer(config, tmp_path / "straight")
    straight.run()
    half = Trainer(config, tmp_path / "halves")
    update = half.agent.update

    def update_then_stop_at_20(batch):
        metrics = update(batch)
        if half.step + 1 == 20:
            os.kill(os.getpid(), signal.SIGTERM)  # the run's handler: finish this step, write a checkpoint
        return metrics

    half.agent.update = update_then_stop_at_20
    assert half.run()["interrupted"]
    payload = checkpoint.load(tmp_path / "halves" / "checkpoints" / "last.pt")
    assert payload["step"] == 20
    resumed = Trainer(payload["config"], tmp_path / "halves", resume=payload)
    assert resumed.run()["env_steps"] == 40
    ours, theirs = resumed.agent.state_dict(), straight.agent.state_dict()
    wrapped = next((key for key in ("learner", "sac") if key in ours), None)  # CQL's DQN or SAC, EDAC's SAC
    if wrapped:
        ours, theirs = ours[wrapped], theirs[wrapped]
    assert ours["updates_done"] == theirs["updates_done"] == 40
    for network in ("actor", "critics", "q", "q_target", "critics_target", "value"):  # SAC's, DQN's or IQL's
        if network in ours:
            torch.testing.assert_close(ours[network], theirs[network], rtol=0, atol=0)
