"""Learning thresholds of the tuned presets: final deterministic eval over >= 10 episodes.

Pass rule: a preset passes when at least one of SEEDS (tried in order, stopping at the first success) ends at or
above its threshold. Why not "every seed": RL outcomes are chaotic, and another CPU's floating-point rounding
(`ATEN_CPU_CAPABILITY=default|avx2|avx512`) turns a seed into what is, in effect, a fresh random draw: the old
rule (both of seeds 0 and 1) failed 3 presets on an AVX-512 machine. A correct build must fail CI less than once
in 100 runs on any CPU; the rule comes from the robustness bench (bench/results/robustness.md, 20 seeds per
kernel path, `python bench/robustness.py`):

- per preset, q = the probability that one seed misses, estimated with Laplace's rule over its measured runs
  pooled over kernel paths, q = (misses + 1) / (runs + 2). Measured: PPO CartPole 1 miss in 58 runs (q = 0.033);
  DQN CartPole 2 in 40 on the default and avx512 paths (q = 0.071), Dueling Double DQN 3 in 40 (q = 0.095);
  A2C and REINFORCE CartPole 0 in 20 (q = 0.045); TRPO CartPole 1 in 11 (q = 0.15); the three Acrobot presets
  0 in 5 (q = 0.14); the five Pendulum presets, C51 and DQN Pendulum 0 in 3 (q = 0.2);
- "both of 2 seeds" fails with probability 1 - (1 - q)^2: 6.5% to 36% per preset, far above 1 in 100;
- "at least 1 of 2" fails with probability q^2: 0.1% for PPO CartPole, 0.5% for DQN, 0.9% for Dueling Double DQN,
  0.2% for A2C and REINFORCE; for the presets measured on 3-5 seeds Laplace's rule can only say 2-4% each.
  Summed over the 16 presets: 38%, almost all of it the uncertainty of the presets measured on few seeds (every
  one of their runs passed, on every machine so far). The goal of 1% is not shown yet: it needs 20 seeds or more
  per preset (60 runs per preset without a miss give q = 1/62 and 0.42% for all 16).
  A broken algorithm still fails both seeds.

The expected cost is one run per preset (the second seed runs only when the first misses).
"""

import pytest

from conftest import compose_config
from rltrain.trainer import Trainer

SEEDS = (0, 1)

# (algo, env, threshold, budget in env steps the preset must stay within, extra overrides)
CASES = [
    ("ppo", "cartpole", 475.0, 100_000),
    ("dqn", "cartpole", 475.0, 50_000),
    ("sac", "pendulum", -200.0, 20_000),
    ("ppo", "pendulum", -250.0, 100_000),
    ("ddpg", "pendulum", -200.0, 20_000),
    ("td3", "pendulum", -200.0, 20_000),
    ("reinforce", "cartpole", 450.0, 300_000),
    ("a2c", "cartpole", 475.0, 200_000),
    ("trpo", "cartpole", 475.0, 100_000),
    ("trpo", "pendulum", -250.0, 100_000),
    ("c51", "cartpole", 475.0, 100_000),
    ("dqn", "cartpole", 475.0, 50_000, "algo.dueling=true", "algo.double=true"),
    ("dqn", "pendulum", -250.0, 50_000, "env.discretize=11"),
    ("ppo", "acrobot", -100.0, 200_000),
    ("a2c", "acrobot", -100.0, 300_000),
    ("dqn", "acrobot", -100.0, 50_000),
]
IDS = [f"{a}-{e}" + "".join(f"-{o.split('.')[-1]}" for o in extra) for a, e, _, _, *extra in CASES]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tuned_preset_reaches_its_threshold(case, tmp_path):
    algo, env, threshold, budget, *extra = case
    finals = {}
    for seed in SEEDS:
        config = compose_config(f"algo={algo}", f"env={env}", f"seed={seed}", "log.progress=false", *extra)
        assert config["total_steps"] <= budget
        assert config["eval"]["episodes"] >= 10
        summary = Trainer(config, tmp_path / f"seed_{seed}").run()
        assert summary["env_steps"] <= budget
        finals[seed] = summary["eval_return_mean"]
        if finals[seed] >= threshold:
            return
    pytest.fail(f"no seed of {SEEDS} reached {threshold}: final eval returns {finals}")
