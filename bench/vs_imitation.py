"""`make bench-imitation`: rltrain's BC and GAIL against the HumanCompatibleAI `imitation` library (1.0) on the very
same expert data, with the same budgets -> bench/results/imitation_<date>_<time>.md (and .json).

1. Expert datasets, recorded with rltrain as the tests record them: the PPO CartPole preset's policy with
   rltrain-collect (20 episodes for BC, 10 for GAIL) and the hand-written Pendulum controller of tests/experts.py
   (50 episodes for BC), as Minari datasets.
2. Each dataset is written to an .npz (the N + 1 observations and N actions of every episode, whether it was
   terminated, the reference scores) that bench/vs_imitation_peer.py turns into imitation's Trajectories under the
   python of imitation's own venv (--peer-python; it pins gymnasium 0.29 and stable-baselines3 2.2).
3. For each case and seed, rltrain's preset (the rltrain CLI) and imitation with the preset's settings, one after
   the other, one thread each; both evaluated with deterministic actions on the same env seeds.

Reported per run: mean return, normalized score (the dataset's reference scores), the run's wall time (training
plus the final evaluation, without interpreter start-up and imports), and the whole child process's wall and CPU
time (user + system, from getrusage).

`--only gail-pendulum` runs a case without a counterpart, rltrain alone: GAIL on Pendulum-v1 from 25 episodes of
the hand-written controller against its threshold (-300 within 1e6 env steps), too long for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from versus import (
    EVAL_SEED_OFFSET,
    HERE,
    RESULTS,
    ROOT,
    child_env,
    fmt,
    machine_sentence,
    median_ratio,
    preset_config,
    rltrain_cli,
    timed_child,
    timed_peer,
    timed_rltrain,
)

PEER_SCRIPT = HERE / "vs_imitation_peer.py"
DEFAULT_PEER_PYTHON = HERE / ".venvs" / "imitation" / "bin" / "python"
EVAL_EPISODES = 20
EXPERT_SEED = 0

# dataset id: (env preset, gymnasium id, episodes, expert)
DATASETS = {
    "bench/cartpole/expert20-v0": ("cartpole", "CartPole-v1", 20, "ppo"),
    "bench/cartpole/expert10-v0": ("cartpole", "CartPole-v1", 10, "ppo"),
    "bench/pendulum/expert50-v0": ("pendulum", "Pendulum-v1", 50, "swingup"),
    "bench/pendulum/expert25-v0": ("pendulum", "Pendulum-v1", 25, "swingup"),
}
# case: (algo, env preset, dataset id, against imitation, its threshold or None)
CASES = {
    "bc-cartpole": ("bc", "cartpole", "bench/cartpole/expert20-v0", True, 475.0),
    "bc-pendulum": ("bc", "pendulum", "bench/pendulum/expert50-v0", True, -250.0),
    "gail-cartpole": ("gail", "cartpole", "bench/cartpole/expert10-v0", True, 475.0),
    # rltrain alone (1e6 env steps, too long for CI): evaluated every eval.every of its preset
    "gail-pendulum": ("gail", "pendulum", "bench/pendulum/expert25-v0", False, -300.0),
}
DEFAULT_CASES = [case for case, (*_, against_imitation, _) in CASES.items() if against_imitation]
# What differs between the two setups, stated in every report.
DIFFERENCES = """\
- BC, both: the same dataset pairs, Adam with the preset's learning rate, batch size and number of gradient updates,
  separate MLPs of the preset's sizes and activation. rltrain standardizes observations with the dataset's mean
  and std; imitation's policy sees raw observations. imitation samples batches as shuffled epochs (drop_last),
  rltrain uniformly with replacement. imitation's entropy bonus is set to 0 (its default is 1e-3), so that on
  Discrete actions both minimize the cross-entropy. Box actions: rltrain's preset (`algo.policy=deterministic`)
  minimizes the MSE of a tanh-bounded action; imitation minimizes the NLL of a Gaussian with a state-independent
  std (SB3's ActorCriticPolicy), its mean clipped to the action box when acting.
- GAIL, both: PPO with the preset's settings (on CartPole: 8 envs x 32 steps per rollout, 10 epochs of 1
  minibatch, lr 1e-3 and clip 0.2 both annealed linearly to 0 over the run's env steps, gamma 0.98, GAE lambda 0.8,
  value coefficient 0.5, entropy coefficient 0.01, gradient norm 0.5, advantages standardized; separate 64-64 tanh
  policy and value MLPs) and the
  same env-step budget; after each rollout 5 discriminator Adam steps (lr 3e-4) of 256 expert and 256 learner pairs
  of that rollout; reward -log(1 - D). imitation's PPO is SB3's (one Adam over both networks, eps 1e-5;
  orthogonal init); its learning-rate and clip schedules are computed from the PPO's env steps because imitation
  restarts SB3's progress at every round. The discriminators differ: rltrain's is a 64-64 tanh MLP on observations
  standardized with the dataset's statistics and actions, with absorbing states for terminated episodes
  (Kostrikov et al., 2019); imitation's BasicRewardNet (64-64 tanh) normalizes its inputs with running statistics
  (RunningNorm, as imitation's docs do) and has no absorbing states.
- Evaluation, both: deterministic actions, 20 episodes, episode i from reset(seed = run seed + 10000 + i).
  imitation runs on gymnasium 0.29 and rltrain on gymnasium 1.x; CartPole-v1 and Pendulum-v1 are the same there."""


# --- 1. the expert datasets ---------------------------------------------------------------------------------------
def build_datasets(work: Path, env: dict, log) -> None:
    """Record every dataset of DATASETS that is not in the Minari root yet."""
    from rltrain import datasets

    os.environ["MINARI_DATASETS_PATH"] = env["MINARI_DATASETS_PATH"]
    missing = [d for d in DATASETS if not (datasets.dataset_path(d) / "data").is_dir()]
    if not missing:
        return
    expert_run = work / "runs" / "ppo-cartpole-expert"
    if any(DATASETS[d][3] == "ppo" for d in missing) and not (expert_run / "summary.json").exists():
        log("training the CartPole expert (the PPO CartPole preset) ...")
        timed_child(rltrain_cli("algo=ppo", "env=cartpole", f"seed={EXPERT_SEED}", f"hydra.run.dir={expert_run}"), env)
    for dataset_id in missing:
        _, env_id, episodes, expert = DATASETS[dataset_id]
        log(f"recording {dataset_id} ({episodes} episodes) ...")
        if expert == "ppo":
            from rltrain.collect import run as collect

            collect([f"run={expert_run}", f"id={dataset_id}", f"episodes={episodes}", f"seed={EXPERT_SEED}"])
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from experts import SwingUp, record

            record(SwingUp(), dataset_id, env_id, episodes, ref_max=None, ref_episodes=100)


def load_dataset(dataset_id: str):
    import gymnasium as gym
    import torch

    from rltrain import datasets

    env_id = DATASETS[dataset_id][1]
    env = gym.make(env_id)
    data = datasets.load(dataset_id, env.observation_space, env.action_space, env_id, torch.device("cpu"))
    env.close()
    return data


# --- 2. the neutral file the peer reads --------------------------------------------------------------------------
def export_npz(dataset_id: str, path: Path) -> None:
    """The dataset's episodes as flat arrays: observations (N + 1 per episode, episode after episode), actions (N per
    episode), episode_lengths, terminated (per episode: its last step was a termination, not a truncation)."""
    data = load_dataset(dataset_id)
    observations, terminated, start = [], [], 0
    for length in data.episode_lengths.tolist():
        last = start + length - 1
        observations += [data.obs[start : last + 1], data.next_obs[last : last + 1]]
        terminated.append(bool(data.terminated[last]))
        start += length
    np.savez(
        path,
        env_id=DATASETS[dataset_id][1],
        observations=np.concatenate([o.numpy() for o in observations]),
        actions=data.actions.numpy(),
        episode_lengths=data.episode_lengths.numpy(),
        terminated=np.asarray(terminated),
    )


# --- 3. the runs --------------------------------------------------------------------------------------------------
def peer_settings(case: str, seed: int) -> dict:
    """The budgets and hyperparameters of rltrain's preset, in the words vs_imitation_peer.py reads."""
    algo, env, *_ = CASES[case]
    config = preset_config(algo, env)
    common = {
        "hidden": list(config["network"]["hidden"]),
        "activation": config["network"]["activation"],
        "eval_episodes": EVAL_EPISODES,
        "eval_seed": seed + EVAL_SEED_OFFSET,
    }
    if algo == "bc":
        bc = config["algo"]
        return {
            **common,
            "lr": bc["lr"],
            "batch_size": bc["batch_size"],
            "updates": config["total_steps"],
            "ent_weight": 0.0,
        }
    gail = config["algo"]
    ppo = {k: v for k, v in gail["ppo"].items() if not k.startswith("_")}
    return {
        **common,
        "ppo": ppo,
        "num_envs": config["num_envs"],
        "total_steps": config["total_steps"],
        "disc_steps": gail["disc_steps"],
        "disc_batch_size": gail["disc_batch_size"],
        "disc_lr": gail["disc_lr"],
    }


def run_rltrain(case: str, seed: int, work: Path, env: dict) -> dict:
    algo, env_preset, dataset_id, against_imitation, _ = CASES[case]
    run_dir = work / "runs" / f"rltrain-{case}-{seed}-{int(time.time())}"
    overrides = [
        f"algo={algo}",
        f"env={env_preset}",
        f"dataset={dataset_id}",
        f"seed={seed}",
        *(["eval.every=0"] if against_imitation else []),  # only the final evaluation, as on imitation's side
        f"eval.episodes={EVAL_EPISODES}",
    ]
    figures, summary = timed_rltrain(overrides, run_dir, env)
    return {**figures, "eval_history": summary["eval_history"]}  # [step, wall s, mean, std] per evaluation


def run_imitation(case: str, seed: int, work: Path, env: dict, peer_python: Path) -> dict:
    algo, _, dataset_id, *_ = CASES[case]
    data = work / f"{dataset_id.replace('/', '_')}.npz"
    out = work / f"imitation-{case}-{seed}.json"
    return timed_peer(peer_python, PEER_SCRIPT, data, seed, peer_settings(case, seed), out, env, "--algo", algo)


# --- the report ---------------------------------------------------------------------------------------------------
def report(results: list[dict], peer_version: str) -> str:
    compared = [r for r in results if CASES[r["case"]][3]]
    alone = [r for r in results if not CASES[r["case"]][3]]
    lines = [
        f"# BC and GAIL: rltrain{f' vs {peer_version}' if compared else ''}, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"{machine_sentence()} Return: mean ± std of {EVAL_EPISODES} deterministic episodes after training. "
        "Run s: training and that evaluation, without interpreter start-up, imports and data loading; process s: the "
        "whole child process. "
        "Budget: gradient updates (BC) or env steps (GAIL).",
    ]
    if compared:
        lines += [
            "",
            "| case | library | seed | budget | return | normalized score | run s | process wall s | process CPU s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in compared:
            lines.append(
                f"| {r['case']} | {r['library']} | {r['seed']} | {r['steps']} | {r['return_mean']:.1f} ± "
                f"{r['return_std']:.1f} | {fmt(r['normalized_score'])} | {r['run_s']:.1f} | "
                f"{r['process_wall_s']:.1f} | {r['process_cpu_s']:.1f} |"
            )
        lines += [
            "",
            "| case | mean return rltrain | mean return imitation | ratio rltrain / imitation, run s (median) | "
            "ratio, process CPU s (median) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for case in dict.fromkeys(r["case"] for r in compared):
            ours = [r for r in compared if r["case"] == case and r["library"] == "rltrain"]
            theirs = [r for r in compared if r["case"] == case and r["library"] != "rltrain"]
            mean = lambda rows: fmt(statistics.mean(r["return_mean"] for r in rows)) if rows else "—"  # noqa: E731
            lines.append(
                f"| {case} | {mean(ours)} | {mean(theirs)} | "
                f"{median_ratio([r['run_s'] for r in ours], [r['run_s'] for r in theirs])} | "
                f"{median_ratio([r['process_cpu_s'] for r in ours], [r['process_cpu_s'] for r in theirs])} |"
            )
        lines += ["", "What is the same and what differs:", "", DIFFERENCES]
    if alone:
        lines += [
            "",
            "## rltrain alone (thresholds)",
            "",
            "| case | seed | threshold | budget | final return | normalized score | best eval | first eval at or "
            "above the threshold (steps) | run s | process CPU s | evaluations (steps: return) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in alone:
            threshold = CASES[r["case"]][4]
            history = r["eval_history"]
            reached = next((step for step, _, mean, _ in history if mean >= threshold), None)
            evaluations = ", ".join(f"{step}: {mean:.0f}" for step, _, mean, _ in history)
            lines.append(
                f"| {r['case']} | {r['seed']} | {threshold} | {r['steps']} | {r['return_mean']:.1f} ± "
                f"{r['return_std']:.1f} | {fmt(r['normalized_score'])} | {max(h[2] for h in history):.1f} | "
                f"{reached or '—'} | {r['run_s']:.1f} | {r['process_cpu_s']:.1f} | {evaluations} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="*",
        choices=list(CASES),
        help=f"cases to run (default: {' '.join(DEFAULT_CASES)}; gail-pendulum trains 1e6 env steps per seed)",
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON, help="python of imitation's venv")
    parser.add_argument(
        "--work",
        type=Path,
        default=RESULTS / "runs" / "imitation",
        help="datasets (its minari/ root), .npz files and run folders",
    )
    args = parser.parse_args()
    cases = args.only or DEFAULT_CASES
    if any(CASES[case][3] for case in cases) and not args.peer_python.exists():
        sys.exit(f"{args.peer_python} does not exist; `make bench-imitation` creates imitation's venv.")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = child_env(work / "minari")

    def log(message: str) -> None:
        print(f"[bench-imitation] {message}", flush=True)

    build_datasets(work, env, log)
    for dataset_id in dict.fromkeys(CASES[case][2] for case in cases if CASES[case][3]):
        export_npz(dataset_id, work / f"{dataset_id.replace('/', '_')}.npz")
    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    results, peer_version = [], "imitation"
    for case in cases:
        data = load_dataset(CASES[case][2])
        for seed in args.seeds:
            for name in ("rltrain", "imitation") if CASES[case][3] else ("rltrain",):
                log(f"{case} seed {seed}: {name} ...")
                if name == "rltrain":
                    result = run_rltrain(case, seed, work, env)
                else:
                    result = run_imitation(case, seed, work, env, args.peer_python)
                result = {"case": case, "seed": seed, **result}
                result["normalized_score"] = data.normalized_score(result["return_mean"])
                peer_version = result["library"] if name == "imitation" else peer_version
                log(
                    f"  return {result['return_mean']:.1f}, run {result['run_s']:.1f} s, "
                    f"process CPU {result['process_cpu_s']:.1f} s"
                )
                results.append(result)
                # written after every run, so a long bench that is stopped keeps what it measured
                text = report(results, peer_version)
                (RESULTS / f"imitation_{stamp}.md").write_text(text)
                (RESULTS / f"imitation_{stamp}.json").write_text(json.dumps(results, indent=2))
    print(text)
    print(f"written: {RESULTS / ('imitation_' + stamp + '.md')}")


if __name__ == "__main__":
    main()
