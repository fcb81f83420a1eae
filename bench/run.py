"""`make bench`: each tuned preset with rltrain, and the same case with stable-baselines3 (sb3-contrib for
TRPO) and the RL Zoo's hyperparameters.

Both run one after the other on this machine, one torch thread each, evaluated the same way (10 deterministic
episodes every `--eval-every` env steps on a separate env). Reported: wall time, SPS, final eval return and the
wall-clock time until an evaluation first reaches the case's threshold, and rltrain / SB3 ratios.
Writes bench/results/<date>_<time>.md (and .json). Needs the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from machine import cpu_name

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# name: (algo, env preset, gymnasium id, threshold, extra rltrain overrides, SB3 / sb3-contrib class or None)
CASES = {
    "ppo-cartpole": ("ppo", "cartpole", "CartPole-v1", 475.0, [], "PPO"),
    "dqn-cartpole": ("dqn", "cartpole", "CartPole-v1", 475.0, [], "DQN"),
    "sac-pendulum": ("sac", "pendulum", "Pendulum-v1", -200.0, [], "SAC"),
    "ppo-pendulum": ("ppo", "pendulum", "Pendulum-v1", -250.0, [], "PPO"),
    "ddpg-pendulum": ("ddpg", "pendulum", "Pendulum-v1", -200.0, [], "DDPG"),
    "td3-pendulum": ("td3", "pendulum", "Pendulum-v1", -200.0, [], "TD3"),
    "a2c-cartpole": ("a2c", "cartpole", "CartPole-v1", 475.0, [], "A2C"),
    "trpo-cartpole": ("trpo", "cartpole", "CartPole-v1", 475.0, [], "TRPO"),
    "trpo-pendulum": ("trpo", "pendulum", "Pendulum-v1", -250.0, [], "TRPO"),
    # Acrobot-v1's reward_threshold; SB3 trains with the zoo's own budget (1e6 for PPO, 5e5 for A2C, 1e5 for DQN)
    "ppo-acrobot": ("ppo", "acrobot", "Acrobot-v1", -100.0, [], "PPO"),
    "a2c-acrobot": ("a2c", "acrobot", "Acrobot-v1", -100.0, [], "A2C"),
    "dqn-acrobot": ("dqn", "acrobot", "Acrobot-v1", -100.0, [], "DQN"),
    # the env's reward_threshold, within 4e4 env steps (the zoo's budget: 2e4)
    "ppo-mountaincar-continuous": (
        "ppo",
        "mountaincar_continuous",
        "MountainCarContinuous-v0",
        90.0,
        [],
        "PPO",
    ),
    # the env's reward_threshold, within 5e4 env steps (the zoo's budget: 3e5)
    "td3-mountaincar-continuous": (
        "td3",
        "mountaincar_continuous",
        "MountainCarContinuous-v0",
        90.0,
        [],
        "TD3",
    ),
    # the env's reward_threshold, at the zoo's budget (5e4 env steps, gSDE on both sides)
    "sac-mountaincar-continuous": (
        "sac",
        "mountaincar_continuous",
        "MountainCarContinuous-v0",
        90.0,
        [],
        "SAC",
    ),
    # MountainCar-v0's reward_threshold, at the zoo's budget (1.2e5 env steps)
    "dqn-mountaincar": ("dqn", "mountaincar", "MountainCar-v0", -110.0, [], "DQN"),
    # MountainCar-v0's reward_threshold, at the zoo's budget (1e6 env steps)
    "ppo-mountaincar": ("ppo", "mountaincar", "MountainCar-v0", -110.0, [], "PPO"),
    # the zoo's DQN return at its budget, 1e5 env steps (box2d extra)
    "dqn-lunarlander": ("dqn", "lunarlander", "LunarLander-v3", 155.0, [], "DQN"),
    # LunarLander-v3's reward_threshold, at the zoo's budget (1e6 env steps)
    "ppo-lunarlander": ("ppo", "lunarlander", "LunarLander-v3", 200.0, [], "PPO"),
    # LunarLanderContinuous-v3's reward_threshold, at the zoo's budget (1e6 env steps)
    "ppo-lunarlander-continuous": (
        "ppo",
        "lunarlander_continuous",
        "LunarLanderContinuous-v3",
        200.0,
        [],
        "PPO",
    ),
    # LunarLanderContinuous-v3's reward_threshold, at 3e5 env steps where the zoo trains for 5e5
    "sac-lunarlander-continuous": (
        "sac",
        "lunarlander_continuous",
        "LunarLanderContinuous-v3",
        200.0,
        [],
        "SAC",
    ),
    # LunarLanderContinuous-v3's reward_threshold, at the zoo's 3e5 env steps
    "td3-lunarlander-continuous": (
        "td3",
        "lunarlander_continuous",
        "LunarLanderContinuous-v3",
        200.0,
        [],
        "TD3",
    ),
    # MuJoCo (mujoco extra): SAC and TD3 at 1e5 env steps where the zoo trains for 1e6, PPO at the zoo's 1e6 (on
    # Hopper with CleanRL's settings, SB3 with the zoo's); thresholds measured here
    "sac-halfcheetah": ("sac", "halfcheetah", "HalfCheetah-v5", 5000.0, [], "SAC"),
    "td3-halfcheetah": ("td3", "halfcheetah", "HalfCheetah-v5", 4000.0, [], "TD3"),
    "ppo-halfcheetah": ("ppo", "halfcheetah", "HalfCheetah-v5", 5000.0, [], "PPO"),
    "sac-hopper": ("sac", "hopper", "Hopper-v5", 800.0, [], "SAC"),
    "td3-hopper": ("td3", "hopper", "Hopper-v5", 400.0, [], "TD3"),
    "ppo-hopper": ("ppo", "hopper", "Hopper-v5", 1500.0, [], "PPO"),
    # no SB3 counterpart with RL Zoo settings: rltrain's own figures
    "reinforce-cartpole": ("reinforce", "cartpole", "CartPole-v1", 450.0, [], None),
    "c51-cartpole": ("c51", "cartpole", "CartPole-v1", 475.0, [], None),
    "dueling-double-dqn-cartpole": (
        "dqn",
        "cartpole",
        "CartPole-v1",
        475.0,
        ["algo.dueling=true", "algo.double=true"],
        None,
    ),
    "dqn-pendulum-11-bins": ("dqn", "pendulum", "Pendulum-v1", -250.0, ["env.discretize=11"], None),
}

# the RL Zoo's published return for the case's env and algorithm (its benchmark.md: mean over the last
# 150,000 env steps of evaluation episodes, one seed) and the budget it trained for; cases it lacks are left out
ZOO = {
    "ppo-cartpole": (500.0, "1e5"),
    "dqn-cartpole": (500.0, "5e4"),
    "sac-pendulum": (-157.0, "2e4"),
    "ppo-pendulum": (-172.2, "1e5"),
    "ddpg-pendulum": (-152.1, "2e4"),
    "td3-pendulum": (-151.9, "2e4"),
    "a2c-cartpole": (500.0, "5e5"),
    "trpo-cartpole": (500.0, "1e5"),
    "trpo-pendulum": (-174.6, "1e5"),
    "ppo-acrobot": (-73.5, "1e6"),
    "a2c-acrobot": (-83.4, "5e5"),
    "dqn-acrobot": (-76.6, "1e5"),
    "ppo-mountaincar-continuous": (88.3, "2e4"),
    "td3-mountaincar-continuous": (93.5, "3e5"),
    "sac-mountaincar-continuous": (94.7, "5e4"),
    "dqn-mountaincar": (-100.8, "1.2e5"),
    "ppo-mountaincar": (-110.4, "1e6"),
    "dqn-lunarlander": (154.4, "1e5"),
    "ppo-lunarlander": (242.1, "1e6"),
    "ppo-lunarlander-continuous": (270.9, "1e6"),
    "sac-lunarlander-continuous": (260.4, "5e5"),
    "td3-lunarlander-continuous": (207.5, "3e5"),
    "sac-halfcheetah": (9535.5, "1e6"),  # the zoo's MuJoCo figures are for the v3 envs
    "td3-halfcheetah": (9655.7, "1e6"),
    "ppo-halfcheetah": (5819.1, "1e6"),
    "sac-hopper": (2325.5, "1e6"),
    "td3-hopper": (3606.4, "1e6"),
    "ppo-hopper": (2410.4, "1e6"),
}

# the zoo's hyperparameter files name the MuJoCo envs v4; v5 is the same task with gymnasium 1.x's fixes
ZOO_ENV_ID = {"HalfCheetah-v5": "HalfCheetah-v4", "Hopper-v5": "Hopper-v4"}
# SB3 trains for the zoo's budget, except where that is beyond this machine (MuJoCo: 1e6 env steps, hours of SB3's
# SAC on one core; SAC LunarLanderContinuous: 5e5, 2 hours of SB3's SAC here): there for as many env steps as
# rltrain's preset, read from the preset itself so that both sides train as long
SB3_AT_RLTRAIN_BUDGET = {"sac-halfcheetah", "td3-halfcheetah", "sac-hopper", "td3-hopper", "sac-lunarlander-continuous"}


def rltrain_budget(case: str) -> int:
    """The env steps rltrain's preset for the case trains (its composed `total_steps`)."""
    from rltrain.cli import compose_plain

    algo, env, _, _, overrides, _ = CASES[case]
    return int(compose_plain([f"algo={algo}", f"env={env}", *overrides])["total_steps"])


# rltrain-only speed figures of the tabular algorithms: name -> (overrides, what is measured)
TABULAR = {
    "q_learning-cliffwalking": (["algo=q_learning", "env=cliffwalking", "total_steps=200000"], "env steps/s"),
    "sarsa-cliffwalking": (["algo=sarsa", "env=cliffwalking", "total_steps=200000"], "env steps/s"),
    "dyna_q-cliffwalking": (["algo=dyna_q", "env=cliffwalking", "total_steps=20000"], "env steps/s"),
    "value_iteration-frozenlake8x8": (["algo=value_iteration", "env=frozenlake", "env.map_name=8x8"], "sweeps"),
    "policy_iteration-frozenlake8x8": (["algo=policy_iteration", "env=frozenlake", "env.map_name=8x8"], "sweeps"),
}


def run_tabular(name: str) -> dict:
    overrides, measured = TABULAR[name]
    run_dir = RESULTS / "runs" / f"rltrain-{name}-{int(time.time())}"
    command = [
        str(Path(sys.executable).parent / "rltrain"),
        *overrides,
        "eval.every=0",
        "log.progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "name": name,
        "measured": measured,
        "steps": summary["env_steps"],
        "wall_s": summary["wall_time_s"],
        "sps": summary["sps"],
        "sweeps": summary.get("sweeps"),
        "final_return": summary["eval_return_mean"],
    }


SWEEP = ["env=cartpole", "seed=0,1,2", "log.progress=false"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
# (algo order, launcher overrides): joblib hands jobs to free workers in sweep order, so the order of the
# slow (DQN, ~27 s) and fast (PPO, ~9 s) jobs decides how evenly the two workers end
SWEEP_VARIANTS = [("ppo,dqn", []), ("ppo,dqn", JOBLIB), ("dqn,ppo", JOBLIB)]


def run_sweep(algos: str, launcher_overrides: list[str]) -> dict:
    """The 2-algorithm x 3-seed CartPole sweep, timed from the command to its exit."""
    launcher = "joblib" if launcher_overrides else "basic"
    sweep_dir = RESULTS / "runs" / f"sweep-{launcher}-{algos.replace(',', '-')}-{int(time.time())}"
    command = [str(Path(sys.executable).parent / "rltrain"), "-m", f"algo={algos}", *SWEEP, *launcher_overrides]
    command.append(f"hydra.sweep.dir={sweep_dir}")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    finals = [json.loads(p.read_text())["eval_return_mean"] for p in sorted(sweep_dir.glob("*/summary.json"))]
    return {
        "sweep": f"algo={algos}",
        "launcher": " ".join(launcher_overrides) or "basic (sequential)",
        "wall_s": wall,
        "finals": finals,
    }


def sweep_report(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Sweep: `rltrain -m algo=<a>,<b> env=cartpole seed=0,1,2` (6 jobs)",
        "",
        "| sweep | launcher | wall s (command to exit) | ratio to sequential | final returns |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        finals = ", ".join(f"{v:.0f}" for v in r["finals"])
        ratio_to_sequential = r["wall_s"] / rows[0]["wall_s"]
        lines.append(f"| {r['sweep']} | {r['launcher']} | {r['wall_s']:.1f} | {ratio_to_sequential:.2f} | {finals} |")
    return lines


def run_rltrain(case: str, seed: int, eval_every: int) -> dict:
    algo, env, _, threshold, overrides, _ = CASES[case]
    run_dir = RESULTS / "runs" / f"rltrain-{case}-{seed}-{int(time.time())}"
    command = [
        str(Path(sys.executable).parent / "rltrain"),
        f"algo={algo}",
        f"env={env}",
        *overrides,
        f"seed={seed}",
        f"eval.every={eval_every}",
        "eval.episodes=10",
        "log.progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    process_time = time.perf_counter() - started
    summary = json.loads((run_dir / "summary.json").read_text())
    history = summary["eval_history"]
    reached = next((h for h in history if h[2] >= threshold), None)
    return {
        "framework": "rltrain",
        "case": case,
        "seed": seed,
        "steps": summary["env_steps"],
        "wall_s": summary["wall_time_s"],
        "process_s": process_time,
        "sps": summary["sps"],
        "final_return": summary["eval_return_mean"],
        "time_to_threshold_s": reached[1] if reached else None,
        "steps_to_threshold": reached[0] if reached else None,
    }


def sb3_worker(case: str, seed: int, eval_every: int, out: Path) -> None:
    """Train the case with SB3 and the RL Zoo's hyperparameters (runs in its own process)."""
    import importlib.util

    import gymnasium as gym
    import numpy as np
    import sb3_contrib
    import stable_baselines3
    import torch
    import yaml
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(1)
    algo, _, env_id, threshold, _, class_name = CASES[case]
    # only rl_zoo3's hyperparameter files are read: importing it would need its optuna >= 3, which the optuna
    # sweeper (optuna 2.10) in the same environment cannot have
    zoo_dir = Path(importlib.util.find_spec("rl_zoo3").submodule_search_locations[0])
    zoo = yaml.safe_load((zoo_dir / "hyperparams" / f"{algo}.yml").read_text())[ZOO_ENV_ID.get(env_id, env_id)]
    hyper = dict(zoo)
    zoo_budget = float(hyper.pop("n_timesteps"))
    total = rltrain_budget(case) if case in SB3_AT_RLTRAIN_BUDGET else int(zoo_budget)
    n_envs = int(hyper.pop("n_envs", 1))
    policy = hyper.pop("policy")
    if "policy_kwargs" in hyper:
        hyper["policy_kwargs"] = eval(hyper["policy_kwargs"], {"dict": dict, "nn": torch.nn})  # RL Zoo's format
    for key in ("learning_rate", "clip_range"):
        value = hyper.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            start = float(value[4:])
            hyper[key] = lambda progress, start=start: progress * start
    normalize = hyper.pop("normalize", False)  # the zoo's VecNormalize: true, or a dict of its keyword arguments
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    eval_env = DummyVecEnv([lambda: gym.make(env_id)])
    if normalize:
        env = VecNormalize(env, **(eval(normalize) if isinstance(normalize, str) else {}))
        # evaluated on raw rewards with the training statistics, as the zoo's own evaluation does
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
        eval_env.obs_rms = env.obs_rms
    noise_type, noise_std = hyper.pop("noise_type", None), hyper.pop("noise_std", 0.0)
    if noise_type:  # RL Zoo's shorthand for SB3's action_noise object
        size = env.action_space.shape[0]
        noise_class = NormalActionNoise if noise_type == "normal" else OrnsteinUhlenbeckActionNoise
        hyper["action_noise"] = noise_class(mean=np.zeros(size), sigma=noise_std * np.ones(size))
    algorithm = getattr(stable_baselines3, class_name, None) or getattr(sb3_contrib, class_name)
    model = algorithm(policy, env, seed=seed, device="cpu", verbose=0, **hyper)

    class Evaluate(BaseCallback):
        def __init__(self):
            super().__init__()
            self.history, self.next_eval, self.start = [], eval_every, time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += eval_every
                self.record()
            return True

        def record(self):
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=10, deterministic=True)
            self.history.append([self.num_timesteps, time.perf_counter() - self.start, float(mean)])

    callback = Evaluate()
    model.learn(total_timesteps=total, callback=callback)
    if not callback.history or callback.history[-1][0] != model.num_timesteps:
        callback.record()
    wall = time.perf_counter() - callback.start
    reached = next((h for h in callback.history if h[2] >= threshold), None)
    out.write_text(
        json.dumps(
            {
                "framework": "sb3",
                "case": case,
                "seed": seed,
                "steps": int(model.num_timesteps),
                "wall_s": wall,
                "sps": model.num_timesteps / wall,
                "final_return": callback.history[-1][2],
                "time_to_threshold_s": reached[1] if reached else None,
                "steps_to_threshold": reached[0] if reached else None,
            }
        )
    )


def run_sb3(case: str, seed: int, eval_every: int) -> dict:
    out = RESULTS / f".sb3-{case}-{seed}.json"
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--sb3-worker",
            case,
            "--seeds",
            str(seed),
            "--eval-every",
            str(eval_every),
            "--out",
            str(out),
        ],
        check=True,
    )
    result = json.loads(out.read_text())
    out.unlink()
    result["process_s"] = time.perf_counter() - started
    return result


def fmt(value, digits=1):
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(ours: list, theirs: list) -> str:
    if not ours or not theirs or any(v is None for v in ours + theirs):
        return "n/a (a seed did not reach the threshold)"
    return f"{statistics.median(ours) / statistics.median(theirs):.2f}"


def tabular_report(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Tabular algorithms (rltrain only)",
        "",
        "| run | env steps | sweeps | wall s (incl. final eval) | env steps/s | final return |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['steps']} | {r['sweeps'] or '—'} | {r['wall_s']:.3f} | "
            f"{fmt(r['sps'], 0) if r['steps'] else '—'} | {fmt(r['final_return'], 3)} |"
        )
    return lines


def report(results: list[dict], args) -> str:
    lines = [
        f"# rltrain benchmark, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, one torch thread per run; "
        f"runs one at a time. Eval: 10 deterministic episodes every {args.eval_every} env steps. Wall time is the "
        "training loop (SB3: model.learn) without interpreter start-up; time to threshold is the wall time at the "
        "first evaluation at or above the threshold.",
        "",
        "| case | framework | seed | steps | wall s | SPS | final return | steps to thr. | time to thr. s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['case']} | {r['framework']} | {r['seed']} | {r['steps']} | {fmt(r['wall_s'])} | "
            f"{fmt(r['sps'], 0)} | "
            f"{fmt(r['final_return'])} | {r['steps_to_threshold'] or '—'} | {fmt(r['time_to_threshold_s'])} |"
        )
    lines += [
        "",
        "| case | threshold | ratio rltrain / SB3, time to threshold (median) | ratio, full-run wall time |",
        "| --- | --- | --- | --- |",
    ]
    for case in dict.fromkeys(r["case"] for r in results):
        ours = [r for r in results if r["case"] == case and r["framework"] == "rltrain"]
        theirs = [r for r in results if r["case"] == case and r["framework"] == "sb3"]
        if not theirs:
            continue
        lines.append(
            f"| {case} | {CASES[case][3]} | "
            f"{ratio([r['time_to_threshold_s'] for r in ours], [r['time_to_threshold_s'] for r in theirs])} "
            f"| {ratio([r['wall_s'] for r in ours], [r['wall_s'] for r in theirs])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CASES), help="cases to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--eval-every", type=int, default=5000)
    parser.add_argument("--no-sb3", action="store_true", help="rltrain only")
    parser.add_argument("--no-tabular", action="store_true", help="skip the tabular speed figures")
    parser.add_argument("--tabular-only", action="store_true", help="only the tabular speed figures")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sequential vs joblib sweep timing")
    parser.add_argument("--sweep-only", action="store_true", help="only the sequential vs joblib sweep timing")
    parser.add_argument("--sb3-worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_worker:
        sb3_worker(args.sb3_worker, args.seeds[0], args.eval_every, args.out)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    cases = [] if args.tabular_only or args.sweep_only else (args.only or list(CASES))
    for case in cases:
        for seed in args.seeds:
            with_sb3 = not args.no_sb3 and CASES[case][5] is not None
            runners = [("rltrain", run_rltrain)] + ([("sb3", run_sb3)] if with_sb3 else [])
            for name, runner in runners:
                print(f"[bench] {case} seed {seed}: {name} ...", flush=True)
                result = runner(case, seed, args.eval_every)
                print(
                    f"[bench]   wall {result['wall_s']:.1f} s, final return {result['final_return']:.1f}, "
                    f"time to threshold {fmt(result['time_to_threshold_s'])} s",
                    flush=True,
                )
                results.append(result)
    sweeps = []
    if not args.no_sweep and not args.only and not args.tabular_only:
        for algos, launcher in SWEEP_VARIANTS:
            print(f"[bench] sweep algo={algos} {' '.join(launcher) or 'basic launcher'} ...", flush=True)
            sweeps.append(run_sweep(algos, launcher))
    tabular = []
    if not args.no_tabular and not args.only and not args.sweep_only:
        for name in TABULAR:
            print(f"[bench] {name} ...", flush=True)
            tabular.append(run_tabular(name))
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    text = report(results, args) + "\n".join(tabular_report(tabular) + sweep_report(sweeps)) + "\n"
    (RESULTS / f"{stamp}.md").write_text(text)
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"deep": results, "tabular": tabular, "sweep": sweeps}, indent=2))
    print(text)
    print(f"written: {RESULTS / (stamp + '.md')}")


if __name__ == "__main__":
    main()
