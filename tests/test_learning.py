"""Learning thresholds of the tuned presets: final deterministic eval over >= 10 episodes.

Pass rule: a preset passes when at least one of SEEDS (tried in order, stopping at the first success) ends at or
above its threshold. Why not "every seed": RL outcomes are chaotic, and another CPU's floating-point rounding
(`ATEN_CPU_CAPABILITY=default|avx2|avx512`) turns a seed into what is, in effect, a fresh random draw: the old
rule (both of seeds 0 and 1) failed 3 presets on an AVX-512 machine. A correct build must fail CI less than once
in 100 runs on any CPU; the rule comes from the robustness bench (bench/results/robustness.md, 20 seeds per
kernel path, `python bench/robustness.py`):

- per preset, q = the probability that one seed misses, estimated with Laplace's rule over its measured runs
  pooled over kernel paths, q = (misses + 1) / (runs + 2). Measured (20 seeds x default, avx2 and avx512 unless
  said): PPO CartPole 1 miss in 60 runs (q = 0.032); TRPO CartPole 2 in 60 (q = 0.048); C51 CartPole 3 in 60
  (q = 0.065); DQN Acrobot 1 in 60 (q = 0.032); PPO and A2C Acrobot, SAC, TD3, DDPG, PPO, TRPO and DQN Pendulum,
  REINFORCE, A2C, DQN and Dueling Double DQN CartPole, PPO MountainCarContinuous 0 in 60 (q = 0.016);
- "every seed of 2" fails with probability 1 - (1 - q)^2: 3% to 13% per preset, far above 1 in 100;
- "at least 1 of 3" (SEEDS) fails with probability q^3: 0.0004% for the presets without a miss, 0.0034% (DQN
  Acrobot) to 0.027% (C51 CartPole) for the others. Summed over these 17 presets and the 3 imitation presets
  below: 0.05%, under 1 in 100 on every kernel path measured.
  A broken algorithm still fails every seed.
- DQN MountainCar misses on 0 of 60 runs (seeds 0-19 x default, avx2 and avx512; q = 1/62): q^3 = 0.0004%, about
  2 minutes a run; the sums below are unchanged at their precision.
- PPO MountainCar misses on 1 of 60 runs (seeds 0-19 x default, avx2 and avx512; default seed 2 ended at
  -111.7; q = 2/62): q^3 = 0.0034%, about 6 minutes a run (two at a time).
- PPO LunarLander misses on 0 of 60 runs (seeds 0-19 x default, avx2 and avx512; q = 1/62): q^3 = 0.0004%. The
  sum over every preset here: 0.06%. It takes 3-4 minutes a run on one core. DQN LunarLander (0 misses in 60 runs
  of its 3-step preset on an Intel Xeon; the earlier 1-step preset missed 3 of 65; 6.5-10 minutes
  a run), PPO LunarLanderContinuous (0 in 60, seeds 0-19 on each path, about 4
  minutes) and SAC and TD3 LunarLanderContinuous (0 in 2 and 0 in 2, 96 and 80 minutes a run) are checked by the
  robustness bench (`make robustness ARGS="--only dqn-lunarlander ppo-lunarlander-continuous"`), not here: with
  the first two the suite ran past the 30 minutes CI has on 2 cores.
- The imitation tests (tests/test_imitation.py) use this rule and these seeds (conftest.some_seed_reaches), their
  presets benched on the tests' own expert datasets recorded per kernel path: GAIL CartPole, BC CartPole and BC
  Pendulum each 0 misses in 60 runs (20 seeds x default, avx2, avx512; q = 0.016), q^3 = 0.0004% each. The MPC test
  (tests/test_mpc.py) uses it too: MPC Pendulum 3 misses in 60 runs (seed 18 on each of default, avx2 and avx512;
  2-3.5 minutes a run on avx512, 3.5-7 on default; q = 4/62), q^3 = 0.027%; with it the sum over every preset here is
  0.08%. The discrete CQL test uses seeds 0 and 1: 0 misses in 60 runs (seeds 0-19 x default, avx2, avx512 on the
  CartPole replay of `make datasets`; q = 1/62), q^2 = 0.026%; the CQL Pendulum test (tests/test_offline_critics.py)
  0.023% (4 misses in 80 runs: 40 on the default path, on an AMD EPYC and an Intel Xeon). The IQL test on Pendulum
  medium-replay there tries seeds 0-3: 8 misses in 68 runs (seeds 0-19 on each path, 28 runs on avx512, on an AMD EPYC
  and an Intel Xeon; q = 9/70), q^4 = 0.027%; with it and the EDAC test there (0.027%) the sum is 0.19%.

Caveat: q^3 treats seeds 0, 1 and 2 as independent. Their training is, their final evaluations are not: the eval
episodes start from env seeds seed + 10000 + k (k = 0-9), so neighbouring seeds share 9 of 10 starts, and on
Pendulum the robustness runs' final returns correlate between neighbouring seeds (Pearson r 0.7-0.9 for the online
Pendulum presets and BC, 0.4-0.6 for CQL, EDAC and MPC; none at a lag of ten seeds, where no start is shared). For
the Pendulum presets the chance that all three miss lies between q^3 and q (README, Robust presets).

The expected cost is about one run per preset (a later seed runs only when the earlier ones missed).
"""

import pytest

from conftest import compose_config, some_seed_reaches
from rltrain.trainer import Trainer

SEEDS = (0, 1, 2)

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
    ("ppo", "acrobot", -100.0, 300_000),
    ("a2c", "acrobot", -100.0, 300_000),
    ("dqn", "acrobot", -100.0, 50_000),
    ("dqn", "mountaincar", -110.0, 120_000),
    ("ppo", "mountaincar", -110.0, 1_000_000),
    ("ppo", "mountaincar_continuous", 90.0, 40_000),
    ("ppo", "lunarlander", 200.0, 1_000_000),
]
IDS = [f"{a}-{e}" + "".join(f"-{o.split('.')[-1]}" for o in extra) for a, e, _, _, *extra in CASES]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tuned_preset_reaches_its_threshold(case, tmp_path):
    algo, env, threshold, budget, *extra = case

    def train(seed: int) -> dict:
        config = compose_config(f"algo={algo}", f"env={env}", f"seed={seed}", "log.progress=false", *extra)
        assert config["total_steps"] <= budget
        assert config["eval"]["episodes"] >= 10
        summary = Trainer(config, tmp_path / f"seed_{seed}").run()
        assert summary["env_steps"] <= budget
        return summary

    some_seed_reaches(threshold, SEEDS, train)
