"""The bookkeeping of `make robustness` (bench/robustness.py): which runs count for a preset, and which CPU they
ran on."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import machine  # noqa: E402
import robustness  # noqa: E402
import run  # noqa: E402


def test_cpu_name_reads_the_first_processors_model_and_vendor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B45\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: other\n"
    )
    assert machine.cpu_name(cpuinfo) == "AMD EPYC 9B45 (AuthenticAMD)"
    assert machine.cpu_name(tmp_path / "missing")  # falls back to the platform module, never empty


def test_a_new_option_left_null_keeps_a_presets_runs_but_a_changed_value_does_not():
    config = {"seed": 0, "log": {"every": 1}, "algo": {"lr": 1e-3, "gamma": 0.99}, "total_steps": 1000}
    digest = robustness.config_hash(config)
    assert robustness.config_hash({**config, "seed": 7, "log": {"every": 50}}) == digest
    assert robustness.config_hash({**config, "algo": {**config["algo"], "new_option": None}}) == digest
    assert robustness.config_hash({**config, "algo": {**config["algo"], "new_option": False}}) != digest
    assert robustness.config_hash({**config, "algo": {**config["algo"], "lr": 3e-4}}) != digest


def test_an_option_added_at_its_earlier_behaviour_keeps_a_presets_runs_but_switched_on_does_not():
    config = {"seed": 0, "algo": {"name": "sac", "tau": 0.005}, "total_steps": 1000}
    digest = robustness.config_hash(config)
    assert robustness.config_hash({**config, "algo": {**config["algo"], "anneal_lr": False}}) == digest
    assert robustness.config_hash({**config, "algo": {**config["algo"], "anneal_lr": True}}) != digest
    dqn = {"seed": 0, "algo": {"name": "dqn", "anneal_lr": False}, "total_steps": 1000}  # DQN always had it
    assert robustness.config_hash(dqn) != robustness.config_hash({**dqn, "algo": {"name": "dqn"}})
    env = {**config, "env": {"name": "pendulum", "id": "Pendulum-v1"}}  # an env option, for every env
    assert robustness.config_hash({**env, "env": {**env["env"], "flatten_observation": False}}) == (
        robustness.config_hash(env)
    )
    assert robustness.config_hash({**env, "env": {**env["env"], "flatten_observation": True}}) != (
        robustness.config_hash(env)
    )


def test_the_tables_cpu_line_counts_runs_per_cpu_most_first():
    runs = [{"cpu": "B"}, {"cpu": "A"}, {"cpu": "B"}, {}]
    assert robustness.cpu_counts(runs) == "B: 2 runs; A: 1 run; not recorded: 1 run"
    assert robustness.cpu_counts([]) == "none"


def test_every_benched_preset_composes_for_its_env_and_sb3_is_capped_only_below_the_zoos_budget():
    from conftest import compose_config

    for case, (algo, env, env_id, _threshold, extra, _sb3) in robustness.PRESETS.items():
        config = compose_config(f"algo={algo}", f"env={env}", *extra)
        assert config["env"]["id"] == env_id, case
        if case in run.SB3_AT_RLTRAIN_BUDGET:  # SB3 trains as long as the preset there, shorter than the zoo
            assert run.rltrain_budget(case) == config["total_steps"] < float(run.ZOO[case][1]), case
    assert set(run.ZOO) <= set(run.CASES) and set(run.SB3_AT_RLTRAIN_BUDGET) <= set(run.CASES)


def test_the_table_judges_runs_by_the_presets_current_threshold(monkeypatch):
    case = "ppo-cartpole"  # threshold 475
    digest = robustness.current_hashes([case], [])[case]
    runs = [
        {"case": case, "path": "default", "seed": 0, "config": digest, "final_return": 480.0, "reached": False},
        {"case": case, "path": "default", "seed": 1, "config": digest, "final_return": 470.0, "reached": True},
        {"case": case, "path": "default", "seed": 2, "config": "an old preset", "final_return": 0.0, "reached": False},
    ]
    for run_ in runs:
        run_["env_steps"] = 100_000
    monkeypatch.setattr(robustness, "load_runs", lambda: runs)
    row = next(line for line in robustness.table([case], []).splitlines() if line.startswith(f"| {case} |"))
    assert "| 1/2 = 0.50 |" in row and row.endswith("| 1 (470) |")


def test_a_run_trained_by_hand_counts_only_when_finished_with_the_presets_exact_config(tmp_path, monkeypatch):
    case = "ppo-cartpole"
    monkeypatch.setattr(robustness, "RUNS", tmp_path / "robustness.jsonl")
    config = robustness.preset_config(case, [])
    history = [[50_000, 20.0, 480.0, 9.0], [100_000, 40.0, 500.0, 0.0]]
    summary = {"seed": 4, "eval_return_mean": 500.0, "best_eval_return_mean": 500.0, "env_steps": 100_000}
    summary |= {"interrupted": False, "eval_history": history, "wall_time_s": 41.5, "config": {**config, "seed": 4}}

    def run_dir(name: str, **changes) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({**summary, **changes}))
        return folder

    robustness.record_runs(case, "avx2", [run_dir("finished")])
    (row,) = robustness.load_runs()
    assert (row["case"], row["path"], row["seed"], row["final_return"], row["reached"]) == (case, "avx2", 4, 500, True)
    assert row["config"] == robustness.current_hashes([case], [])[case]
    assert row["evals"] == [[50000, 480.0], [100000, 500.0]]
    with pytest.raises(SystemExit, match="is recorded"):  # the same seed, path and CPU again
        robustness.record_runs(case, "avx2", [run_dir("again")])
    other = {**config, "algo": {**config["algo"], "gamma": 0.5}, "seed": 5}
    with pytest.raises(SystemExit, match="did not train ppo-cartpole's config"):
        robustness.record_runs(case, "avx2", [run_dir("changed", seed=5, config=other)])
    with pytest.raises(SystemExit, match="stopped before its budget"):
        robustness.record_runs(case, "avx2", [run_dir("stopped", seed=6, interrupted=True)])
    assert len(robustness.load_runs()) == 1


def test_td3_mountaincar_continuous_noise_alone_reaches_the_goal_in_the_first_episode():
    """The sparse goal is only learned once an episode reaches it: the preset's OU noise must get there by itself
    (bench/mountaincar_exploration.py; the zoo's slow noise reaches it in about 1 first episode of 10)."""
    import gymnasium as gym
    import mountaincar_exploration as exploration
    import numpy as np

    algo = robustness.preset_config("td3-mountaincar-continuous", [])["algo"]
    env = gym.make(exploration.ENV_ID)
    car = exploration.VectorCar(env)
    exploration.check_against_env(car, env, np.random.default_rng(0))
    rate = exploration.first_episode_goal_rate(car, algo["ou_theta"], algo["exploration_noise"], 0.0, 1000, seed=0)
    assert rate >= 0.9
    assert exploration.first_episode_goal_rate(car, 0.0015, 0.05, 0.0, 1000, seed=0) < 0.2  # the zoo's noise
