"""Model predictive control (algos/mpc.py, planners.py): the ensemble fits known dynamics, the planners find the
optimum of known costs inside the action bounds, checkpoints round-trip, and Pendulum is solved (slow)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import compose_config, some_seed_reaches, tiny
from rltrain.algos.mpc import MPC
from rltrain.buffers import ReplayBuffer
from rltrain.cli import config_dir
from rltrain.errors import RltrainError
from rltrain.planners import CEM, MPPI, RandomShooting
from rltrain.trainer import Trainer

CPU = torch.device("cpu")
BOX3 = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
BOX2 = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def quadratic_returns(target: torch.Tensor):
    """returns(a) = -||a - target||^2 summed over the horizon: the optimum is `target` (clipped to the bounds)."""
    return lambda sequences: -(sequences - target).square().sum((2, 3))


@pytest.mark.parametrize("planner", [CEM(200, 20, 6, 0.1, 0.5), MPPI(500, 6, 0.05, 0.3)], ids=["cem", "mppi"])
def test_planner_finds_the_optimum_of_a_quadratic_cost(planner):
    torch.manual_seed(0)
    target = torch.tensor([[0.3, -0.5], [0.1, 0.6], [-0.7, 0.2]])  # [H, A]
    low, high = -torch.ones(2), torch.ones(2)
    plan = planner(quadratic_returns(target), torch.zeros(4, 3, 2), low, high)  # a batch of 4 observations
    assert plan.shape == (4, 3, 2)
    torch.testing.assert_close(plan, target.expand(4, -1, -1), atol=0.05, rtol=0)


@pytest.mark.parametrize(
    "planner", [CEM(100, 10, 4, 0.1, 0.5), MPPI(100, 4, 0.05, 0.5), RandomShooting(100)], ids=["cem", "mppi", "random"]
)
def test_planner_respects_the_action_bounds(planner):
    torch.manual_seed(0)
    low, high = torch.tensor([-0.5, 0.0]), torch.tensor([0.25, 1.0])
    seen = []

    def returns(sequences):
        seen.append(sequences)
        return sequences.sum((2, 3))  # pushes every action to its upper bound

    start = torch.zeros(2, 4, 2)  # inside the bounds
    plan = planner(returns, start, low, high)
    for candidates in [*seen, plan.unsqueeze(1)]:
        assert (candidates >= low).all() and (candidates <= high).all()
    assert seen[-1].shape[:2] == (2, 100)  # every candidate of an iteration in one call
    assert (plan.sum((1, 2)) > start.sum((1, 2)) + 1.0).all()  # and the plan moved towards the upper bounds


def test_ensemble_fits_a_known_linear_system():
    torch.set_num_threads(1)  # as runs do (threads: 1): small matmuls are slower on more threads
    torch.manual_seed(0)
    A = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.95]])
    B = torch.tensor([[0.5, 0.0], [0.0, 0.3], [0.2, -0.4]])
    obs = torch.randn(1000, 3)
    actions = torch.rand(1000, 2) * 4 - 2
    next_obs = obs @ A.T + actions @ B.T
    rewards = -obs.square().sum(-1)
    agent = MPC(BOX3, BOX2, CPU, hidden=[64, 64], batch_size=64, max_epochs=30, patience=30)
    metrics = agent.update({"obs": obs, "actions": actions, "rewards": rewards, "next_obs": next_obs})
    assert metrics["heldout_model_mse"] < 0.01 and metrics["heldout_reward_mse"] < 0.05, metrics
    assert all(np.isfinite(v) for v in metrics.values())
    test_obs, test_actions = torch.randn(500, 3), torch.rand(500, 2) * 4 - 2
    models = agent.models
    members = models.ensemble
    normalized = (test_actions - agent.action_center) / agent.action_half_range
    mean, logvar = models.dynamics_stats(test_obs.expand(members, -1, -1), normalized.expand(members, -1, -1))
    predicted = test_obs + models.delta_norm.inverse(mean.detach())
    truth = test_obs @ A.T + test_actions @ B.T
    assert (predicted - truth).square().mean() < 0.01 * truth.var()
    assert (models.min_logvar < models.max_logvar).all()


def test_planning_stops_counting_reward_after_a_learned_termination():
    """s' = s + a, reward 1 on every step, the episode terminates once |s'| > 1: with rewards alone every plan is
    worth the same; with the learned ends, a plan that leaves [-1, 1] is worth fewer steps than one that stays."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    box1 = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    obs = torch.rand(2000, 1) * 2 - 1
    actions = torch.rand(2000, 1) * 0.8 - 0.4
    next_obs = obs + actions
    ones = torch.ones(2000)
    agent = MPC(box1, box1, CPU, hidden=[32, 32], ensemble=1, particles=1, batch_size=64, max_epochs=40, patience=40)
    start = torch.tensor([[0.5]])
    stay = torch.zeros(1, 1, 6, 1)  # normalized actions: 0.4 per step (half-range 2) leaves [-1, 1] at step 2
    leave = torch.full((1, 1, 6, 1), 0.2)
    agent.update({"obs": obs, "actions": actions, "rewards": ones, "next_obs": next_obs, "terminated": 0 * ones})
    assert not agent.models.learns_terminations  # an env that never ended: planning as without the model
    torch.manual_seed(1)
    torch.testing.assert_close(
        agent.returns(start, torch.cat([stay, leave], dim=1))[0], torch.full((2,), 6.0), atol=0.3, rtol=0
    )
    metrics = agent.update(
        {
            "obs": obs,
            "actions": actions,
            "rewards": ones,
            "next_obs": next_obs,
            "terminated": 1.0 * (next_obs.abs() > 1)[:, 0],
        }
    )
    assert agent.models.learns_terminations and metrics["heldout_termination_bce"] < 0.1, metrics
    torch.manual_seed(1)
    returns = agent.returns(start, torch.cat([stay, leave], dim=1))[0]
    assert returns[0] == pytest.approx(6.0, abs=0.3)  # 6 rewarded steps
    assert returns[1] == pytest.approx(2.0, abs=0.5)  # 0.9 then 1.3: the step that ends still pays, none after it


def test_replay_contents_are_every_stored_transition():
    replay = ReplayBuffer(10, (3,), (2,), torch.float32, CPU)
    for i in range(4):
        replay.add(torch.full((1, 3), i), torch.zeros(1, 2), torch.tensor([i]), torch.ones(1, 3), torch.zeros(1))
    contents = replay.contents()
    assert contents["obs"].shape == (4, 3) and contents["rewards"].tolist() == [0, 1, 2, 3]


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    config = tiny(compose_config("algo=mpc", "env=pendulum"), total_steps=300)
    config["algo"].update(learning_starts=100, train_every=100, max_epochs=3, population=20, horizon=5)
    trainer = Trainer(config, tmp_path)
    summary = trainer.run()
    assert summary["env_steps"] == 300 and trainer.agent.fits == 3  # at steps 100, 200, 300
    state = trainer.agent.state_dict()
    assert "replay" in torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)  # data kept for resume
    clone = Trainer(config, tmp_path / "clone").agent
    clone.load_state_dict(state)
    obs = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -2.0]])
    torch.manual_seed(7)
    first = trainer.agent.act(obs, explore=False)
    torch.manual_seed(7)
    second = clone.act(obs, explore=False)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    high = torch.as_tensor(gym.make("Pendulum-v1").action_space.high)
    assert (first.abs() <= high).all()

    # a checkpoint saved before the termination model existed loads, and plans the same
    termination_keys = [k for k in state["models"] if k.startswith("termination.") or k == "learns_terminations"]
    kept = len(state["optimizer"]["param_groups"][0]["params"]) - sum(
        k.startswith("termination.") for k in termination_keys
    )
    old = {
        **state,
        "models": {k: v for k, v in state["models"].items() if k not in termination_keys},
        "optimizer": {
            "state": state["optimizer"]["state"],
            "param_groups": [{**state["optimizer"]["param_groups"][0], "params": list(range(kept))}],
        },
    }
    older = Trainer(config, tmp_path / "older").agent
    older.load_state_dict(old)
    torch.manual_seed(7)
    torch.testing.assert_close(older.act(obs, explore=False), first, rtol=0, atol=0)


def test_discrete_actions_are_one_clear_error(tmp_path):
    config = tiny(compose_config("algo=mpc", "env=cartpole"))
    with pytest.raises(RltrainError, match=r"^algo=mpc needs a Box action space.*Algorithms that fit CartPole-v1"):
        Trainer(config, tmp_path, algo_dir=config_dir() / "algo")


@pytest.mark.slow
def test_pendulum_reaches_minus_300_within_5000_steps(tmp_path):
    """The pass rule of tests/test_learning.py: at least one of seeds 0, 1, 2 (3 misses in 60 benched runs, seeds
    0-19 on default, avx2 and avx512, all three seed 18, whose evaluation starts are the hardest of the bench's
    for every Pendulum preset: q = 4/62, q^3 = 0.027%)."""

    def train(seed: int) -> dict:
        config = compose_config("algo=mpc", "env=pendulum", f"seed={seed}", "log.progress=false")
        assert config["total_steps"] <= 5000 and config["eval"]["episodes"] >= 10
        return Trainer(config, tmp_path / f"seed_{seed}").run()

    some_seed_reaches(-300.0, (0, 1, 2), train)
