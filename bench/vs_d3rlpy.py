"""`make bench-d3rlpy`: rltrain's offline algorithms against d3rlpy 2.8 on the very same Minari datasets, with the same
settings and budgets -> bench/results/d3rlpy_<date>_<time>.md (and .json).

1. Each dataset of --datasets (`make datasets` builds them into Minari's root) is read with rltrain.datasets and
   written to an .npz: observations, next observations, actions, rewards, terminals (terminated) and timeouts
   (truncated) kept apart, the episode lengths, the reference scores, the observation mean and std rltrain
   standardizes with, the env's action box and the reward scale of rltrain's IQL. bench/vs_d3rlpy_peer.py, under the
   python of d3rlpy's own venv (--peer-python; d3rlpy 2.8 pins gymnasium 1.0), builds d3rlpy's
   MDPDataset(observations, actions, rewards, terminals, timeouts) from it.
2. For each dataset, case and seed: rltrain (`rltrain algo=<algo> env=<the dataset's env> dataset=<id> seed=<s>`,
   its tuned preset conf/tuned/<algo>_pendulum.yaml, evaluated only at the end) and then d3rlpy, with the settings of
   the config that rltrain run trained with mapped onto d3rlpy's config (d3rlpy_settings() below), one run at a time,
   one thread each. Both evaluate with deterministic actions on the same env seeds and episode count.

Reported per run: mean return, normalized score 100 (R - ref_min) / (ref_max - ref_min) (the dataset's reference
scores), the run's wall time (training plus the final evaluation, without interpreter start-up, imports, data
loading and building the networks and optimizers), and the whole child process's wall and CPU time (user +
system, from getrusage); per case the ratios rltrain / d3rlpy of the medians over seeds, and whether the goal (a
normalized score equal or better at <= 0.5x d3rlpy's run wall time) is met.

    python bench/vs_d3rlpy.py --only bc cql --seeds 0 1 --datasets rltrain/pendulum/medium-replay-v0

## Settings, rltrain -> d3rlpy

- All: the preset's total_steps -> fit(n_steps) gradient updates (one epoch of them); batch_size; gamma and tau;
  network.hidden and network.activation -> VectorEncoderFactory(hidden_units, activation) for every network (actor,
  critics, value), each its own MLP on both sides; Adam (betas 0.9, 0.999, eps 1e-8) everywhere.
  normalize_obs -> StandardObservationScaler(mean, std) given rltrain's statistics of the dataset's observations
  (mean and sample std); both map actions from the env's box ([-2, 2]) to [-1, 1] (MinMaxActionScaler with the box's
  bounds) and tanh-bound the policy's mean. Transitions sampled uniformly with replacement on both sides.
- BC (algos/bc.py -> BCConfig): lr -> learning_rate, policy=deterministic -> policy_type="deterministic"; both
  minimize the squared error of tanh(f(s)) to the scaled action (the same loss for one action dimension).
- CQL (algos/cql.py on algos/sac.py -> CQLConfig): actor_lr -> actor_learning_rate, critic_lr ->
  critic_learning_rate, alpha_lr -> temp_learning_rate, init_alpha -> initial_temperature, cql_alpha ->
  conservative_weight, n_actions -> n_action_samples, backup_entropy -> soft_q_backup, n_critics 2.
  lagrange=false -> alpha_learning_rate=0 (d3rlpy then builds no optimizer for its alpha) with initial_alpha=1, so
  that the penalty weight is conservative_weight exactly, and alpha_threshold=0 (it shifts the loss's value, not its
  gradient); lagrange=true -> alpha_learning_rate=critic_lr (rltrain's alpha' optimizer uses it) and
  alpha_threshold=target_gap. The gap is the same on both sides: logsumexp over n samples from each of U[-1, 1]
  (log density -|A| log 2), pi(.|s) and pi(.|s') (their log-probabilities subtracted), all evaluated at s and
  detached, minus Q of the dataset's action, averaged over the batch, summed over the two critics; the TD loss is the
  sum over critics of the mean squared error on both sides. target_entropy=null is d3rlpy's fixed -|A|; a
  temperature other than 1 or a target_entropy has no d3rlpy counterpart (the bench refuses them).
- IQL (algos/iql.py -> IQLConfig): actor_lr -> actor_learning_rate, critic_lr -> critic_learning_rate (d3rlpy
  trains Q and V with one Adam at that rate: the same as two with equal rates, the losses being separate; the bench
  refuses value_lr != critic_lr), expectile -> expectile, beta -> weight_temp, max_weight -> max_weight, n_critics
  2, cosine_actor_lr -> actor_optim_factory=AdamFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=the
  number of updates)), normalize_rewards -> MultiplyRewardScaler(c) with rltrain's c = longest episode / (highest -
  lowest episode return) of the dataset. layer_norm -> VectorEncoderFactory(use_layer_norm=True) for the critic and
  value encoders (d3rlpy puts the LayerNorm after each hidden activation, rltrain before it).
- AWR (algos/awr.py) -> AWACConfig: DIFFERENT ALGORITHMS (d3rlpy has no AWR; AWAC is its advantage-weighted
  counterpart). actor_lr -> actor_learning_rate, value_lr -> critic_learning_rate, beta -> lam; tau 0.005,
  n_action_samples 1 and n_critics 2 are AWAC's defaults (AWR has no target network).
- d3rlpy's algorithm is built (build_with_dataset) before its run's clock starts, as rltrain's agent is built before
  its Trainer's clock starts. Its fit() is timed with only its updates in it: no evaluators, show_progress=False,
  logger_adapter=NoopAdapterFactory() (no files), save_interval above the number of epochs (no model saved). It
  still gathers every update's losses and step timings in its logger (its fit() has no switch for that). rltrain
  keeps its defaults: TensorBoard scalars every log.every updates and a final checkpoint, inside its run time.

## What still differs

- Data: d3rlpy's flat MDPDataset has no next observation for the last step of an episode that ended by a timeout,
  so d3rlpy never samples that step (Episode.transition_count); rltrain samples it with its true next observation
  (Minari keeps N + 1 observations per episode) and bootstraps from it. d3rlpy adds eps=1e-3 to the observation
  std.
- Initialization: rltrain's policy and value MLPs start orthogonal (gain sqrt 2, output gain 1), its SAC actor and
  its critics from PyTorch's default uniform; d3rlpy uses PyTorch's defaults everywhere.
- CQL: with soft_q_backup=False d3rlpy's TD target takes the policy's mean action tanh(mu(s')) at s', rltrain
  samples a' ~ pi(.|s') (as CORL does). The temperature loss is -alpha (log pi - |A|) in d3rlpy (gradient through
  alpha) and -log(alpha) (log pi + target entropy) in rltrain (through log alpha, as CORL and SAC's authors), and
  d3rlpy steps the temperature before the actor's loss is computed. The actor's log-std is clamped to [-20, 2] in
  d3rlpy, [-5, 2] in rltrain.
- IQL: the bench runs rltrain's preset with algo.policy=gaussian (its preset's policy is deterministic; d3rlpy's IQL
  has only a Gaussian one). d3rlpy's policy std is one state-independent parameter (a sigmoid into [-5, 2]);
  rltrain's comes from a state-dependent head clamped to [-5, 2]. d3rlpy's actor weights exp(beta (Q_target - V))
  use V after this update's V step, rltrain's V before it. d3rlpy sums the two critics' squared errors where
  rltrain averages them (a factor of 2 that Adam does not see, up to its eps).
- AWR vs AWAC: rltrain's AWR regresses V on TD(lambda) returns (td_lambda 0.95) of the dataset's own episodes,
  recomputed every refresh_every updates, standardizes the advantages over the whole dataset, weights
  exp(A / beta) clipped at max_weight and fits a deterministic (MSE) policy. d3rlpy's AWAC learns twin Q by TD with
  target critics, its target min Q'(s', a') - log pi(a'|s') (SAC's target with the temperature fixed at 1: AWAC's
  log-temperature is a constant 0), weights each batch by softmax((Q(s, a) - Q(s, a'~pi)) / lam) times the batch
  size (no clip) and fits a Gaussian policy with a state-independent log-std in [-6, 0].
- Evaluation: the same procedure on both sides (rltrain's: min(episodes, 16) sync vector envs, reset(seed=run seed
  + 10000) so that episode i starts from seed + 10000 + i); gymnasium 1.0 under d3rlpy, 1.x under rltrain;
  Pendulum-v1 is the same there.
"""

from __future__ import annotations

import argparse
import json
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
    child_env,
    fmt,
    machine_sentence,
    timed_peer,
    timed_rltrain,
)

PEER_SCRIPT = HERE / "vs_d3rlpy_peer.py"
DEFAULT_PEER_PYTHON = HERE / ".venvs" / "d3rlpy" / "bin" / "python"
EVAL_EPISODES = 10
GOAL_WALL_RATIO = 0.5  # the goal: an equal or better normalized score at <= 0.5x d3rlpy's run wall time
# case: (rltrain algo, the d3rlpy config it is set against)
CASES = {
    "bc": ("bc", "BCConfig"),
    "cql": ("cql", "CQLConfig"),
    "iql": ("iql", "IQLConfig"),
    "awr": ("awr", "AWACConfig"),
}
# settings a case changes in rltrain's preset to match what d3rlpy has (d3rlpy's IQL policy is Gaussian)
CASE_OVERRIDES = {"iql": ["algo.policy=gaussian"]}
DEFAULT_DATASETS = ["rltrain/pendulum/medium-replay-v0"]
TIMES = ("run_s", "process_wall_s", "process_cpu_s")  # compared as ratios rltrain / d3rlpy of the medians
MAPPING_AND_DIFFERENCES = __doc__[__doc__.index("## Settings, rltrain -> d3rlpy") :].strip()


class Unmapped(Exception):
    """A setting of rltrain's config that has no d3rlpy counterpart."""


# --- 1. the neutral file the peer reads --------------------------------------------------------------------------
def load_dataset(dataset_id: str):
    """The dataset as rltrain trains on it (Dataset), read on its own env's spaces, and that env's gymnasium id."""
    import gymnasium as gym
    import torch

    from rltrain import datasets

    env_id = datasets.env_id_of(dataset_id)
    env = gym.make(env_id)
    data = datasets.load(dataset_id, env.observation_space, env.action_space, env_id, torch.device("cpu"))
    env.close()
    return data, env_id


def iql_reward_scale(data) -> float:
    """rltrain's IQL reward scale with normalize_rewards: longest episode / (highest - lowest episode return)."""
    spread = float(data.episode_returns.max() - data.episode_returns.min())
    return float(data.episode_lengths.max()) / spread if spread > 0 else 1.0


def export_npz(data, env_id: str, path: Path) -> None:
    """The dataset as flat arrays, one row per transition, episodes back to back: observations, next_observations,
    actions, rewards, terminals (terminated: no bootstrap) and timeouts (truncated: the episode was cut) kept apart;
    every episode's last row is one or the other, so d3rlpy's episodes are Minari's. Besides: episode_lengths,
    ref_min_score / ref_max_score, obs_mean / obs_std (rltrain's standardization), action_low / action_high (the
    env's box) and reward_scale (rltrain's IQL)."""
    from rltrain.networks import Standardizer

    terminals = data.terminated.numpy().astype(np.float32)
    timeouts = data.truncated.numpy().astype(np.float32)
    ends = np.cumsum(data.episode_lengths.numpy()) - 1
    timeouts[ends] = 1.0 - terminals[ends]
    standardizer = Standardizer(int(np.prod(data.obs.shape[1:])), data.obs.reshape(len(data), -1))
    space = data.action_space
    np.savez(
        path,
        env_id=env_id,
        observations=data.obs.numpy(),
        next_observations=data.next_obs.numpy(),
        actions=data.actions.numpy(),
        rewards=data.rewards.numpy(),
        terminals=terminals,
        timeouts=timeouts,
        episode_lengths=data.episode_lengths.numpy(),
        ref_min_score=np.nan if data.ref_min_score is None else data.ref_min_score,
        ref_max_score=np.nan if data.ref_max_score is None else data.ref_max_score,
        obs_mean=standardizer.mean.numpy(),
        obs_std=standardizer.std.numpy(),
        action_low=np.asarray(space.low, dtype=np.float32),
        action_high=np.asarray(space.high, dtype=np.float32),
        reward_scale=iql_reward_scale(data),
    )


# --- 2. rltrain's config in d3rlpy's words ---------------------------------------------------------------------------
def require(condition: bool, setting: str) -> None:
    if not condition:
        raise Unmapped(f"{setting} has no d3rlpy counterpart in this bench.")


def d3rlpy_settings(config: dict, seed: int) -> dict:
    """What bench/vs_d3rlpy_peer.py builds d3rlpy's config from, for the plain config an rltrain run trained with: the
    config class, its plain keyword arguments, which of its encoders get rltrain's MLP, the scalers and schedules, and
    the budgets (see the module docstring for each mapping)."""
    algo, network = config["algo"], config["network"]
    require(network["activation"] in ("relu", "tanh"), f"network.activation={network['activation']}")
    name = algo["name"]
    settings = {
        "hidden": list(network["hidden"]),
        "activation": network["activation"],
        "updates": int(config["total_steps"]),
        "observation_scaler": bool(algo["normalize_obs"]),
        "reward_scaler": False,
        "actor_cosine_steps": None,
        "layer_norm_encoders": [],
        "eval_episodes": int(config["eval"]["episodes"]),
        "eval_seed": int(config["seed"]) + EVAL_SEED_OFFSET,
    }
    kwargs = {"batch_size": int(algo["batch_size"])}
    if name == "bc":
        require(algo["policy"] == "deterministic", f"algo.policy={algo['policy']}")
        require(algo["top_fraction"] == 1.0, f"algo.top_fraction={algo['top_fraction']}")
        kwargs |= {"learning_rate": algo["lr"], "policy_type": "deterministic"}
        return {**settings, "config": "BCConfig", "encoders": ["encoder_factory"], "kwargs": kwargs}
    kwargs |= {"gamma": algo["gamma"]}
    if name == "cql":
        require(algo["temperature"] == 1.0, f"algo.temperature={algo['temperature']}")
        require(algo["target_entropy"] is None, f"algo.target_entropy={algo['target_entropy']}")
        kwargs |= {
            "actor_learning_rate": algo["actor_lr"],
            "critic_learning_rate": algo["critic_lr"],
            "temp_learning_rate": algo["alpha_lr"],
            "alpha_learning_rate": algo["critic_lr"] if algo["lagrange"] else 0.0,
            "initial_temperature": algo["init_alpha"],
            "initial_alpha": 1.0,
            "alpha_threshold": algo["target_gap"] if algo["lagrange"] else 0.0,
            "conservative_weight": algo["cql_alpha"],
            "n_action_samples": int(algo["n_actions"]),
            "soft_q_backup": bool(algo["backup_entropy"]),
            "max_q_backup": False,
            "n_critics": 2,
            "tau": algo["tau"],
        }
        encoders = ["actor_encoder_factory", "critic_encoder_factory"]
        return {**settings, "config": "CQLConfig", "encoders": encoders, "kwargs": kwargs}
    if name == "iql":
        require(algo["value_lr"] == algo["critic_lr"], f"algo.value_lr={algo['value_lr']} != algo.critic_lr")
        require(algo["policy"] == "gaussian", f"algo.policy={algo['policy']}")
        kwargs |= {
            "actor_learning_rate": algo["actor_lr"],
            "critic_learning_rate": algo["critic_lr"],
            "expectile": algo["expectile"],
            "weight_temp": algo["beta"],
            "max_weight": algo["max_weight"],
            "n_critics": 2,
            "tau": algo["tau"],
        }
        settings |= {
            "reward_scaler": bool(algo["normalize_rewards"]),
            "actor_cosine_steps": settings["updates"] if algo["cosine_actor_lr"] else None,
            "layer_norm_encoders": ["critic_encoder_factory", "value_encoder_factory"] if algo["layer_norm"] else [],
        }
        encoders = ["actor_encoder_factory", "critic_encoder_factory", "value_encoder_factory"]
        return {**settings, "config": "IQLConfig", "encoders": encoders, "kwargs": kwargs}
    if name == "awr":
        kwargs |= {
            "actor_learning_rate": algo["actor_lr"],
            "critic_learning_rate": algo["value_lr"],
            "lam": algo["beta"],
            "tau": 0.005,
            "n_action_samples": 1,
            "n_critics": 2,
        }
        encoders = ["actor_encoder_factory", "critic_encoder_factory"]
        return {**settings, "config": "AWACConfig", "encoders": encoders, "kwargs": kwargs}
    raise Unmapped(f"algo={name} has no d3rlpy counterpart in this bench.")


# --- 3. the runs --------------------------------------------------------------------------------------------------
def env_preset(dataset_id: str) -> str:
    from rltrain import datasets
    from rltrain.cli import config_dir

    overrides = datasets.env_overrides(dataset_id, config_dir() / "env")
    if len(overrides) != 1:
        sys.exit(f"{dataset_id} was not recorded on a shipped env preset; the bench needs one (its tuned presets).")
    return overrides[0].removeprefix("env=")


def rltrain_overrides(case: str, dataset_id: str, seed: int, extra: list[str]) -> list[str]:
    return [
        f"algo={CASES[case][0]}",
        f"env={env_preset(dataset_id)}",
        f"dataset={dataset_id}",
        f"seed={seed}",
        "eval.every=0",  # only the final evaluation, as on d3rlpy's side
        f"eval.episodes={EVAL_EPISODES}",
        *CASE_OVERRIDES.get(case, []),
        *extra,
    ]


def check_mappings(cases: list[str], dataset_ids: list[str], extra: list[str]) -> None:
    """Fail before anything trains when a case's config has a setting the bench cannot give d3rlpy."""
    from rltrain.cli import compose_plain

    for dataset_id in dataset_ids:
        for case in cases:
            config = compose_plain(rltrain_overrides(case, dataset_id, 0, extra))
            try:
                d3rlpy_settings(config, 0)
            except Unmapped as exc:
                sys.exit(f"case {case}: {exc}")


def run_rltrain(case: str, dataset_id: str, seed: int, extra: list[str], work: Path, env: dict) -> dict:
    run_dir = work / "runs" / f"rltrain-{case}-{dataset_id.replace('/', '_')}-{seed}-{int(time.time())}"
    figures, summary = timed_rltrain(rltrain_overrides(case, dataset_id, seed, extra), run_dir, env)
    return {**figures, "algo": CASES[case][0].upper(), "config": summary["config"]}


def run_d3rlpy(case: str, dataset_id: str, seed: int, config: dict, work: Path, env: dict, python: Path) -> dict:
    out = work / f"d3rlpy-{case}-{dataset_id.replace('/', '_')}-{seed}.json"
    settings = d3rlpy_settings(config, seed)
    return {
        **timed_peer(python, PEER_SCRIPT, npz_path(work, dataset_id), seed, settings, out, env),
        "settings": settings,
    }


def npz_path(work: Path, dataset_id: str) -> Path:
    return work / f"{dataset_id.replace('/', '_')}.npz"


# --- the report ---------------------------------------------------------------------------------------------------
def mean_score(rows: list[dict]) -> float | None:
    scores = [r["normalized_score"] for r in rows if r["normalized_score"] is not None]
    return statistics.mean(scores) if scores else None


def summary_rows(results: list[dict]) -> list[dict]:
    """Per dataset and case: mean normalized score per library, the ratios rltrain / d3rlpy of the medians over
    seeds, and whether the goal is met."""
    rows = []
    for dataset_id, case in dict.fromkeys((r["dataset"], r["case"]) for r in results):
        runs = [r for r in results if r["dataset"] == dataset_id and r["case"] == case]
        ours = [r for r in runs if r["library"] == "rltrain"]
        theirs = [r for r in runs if r["library"] != "rltrain"]
        ratios = {
            key: statistics.median(r[key] for r in ours) / statistics.median(r[key] for r in theirs)
            for key in TIMES
            if ours and theirs
        }
        score_ours, score_theirs = mean_score(ours), mean_score(theirs)
        goal = None
        if score_ours is not None and score_theirs is not None:
            goal = score_ours >= score_theirs and ratios["run_s"] <= GOAL_WALL_RATIO
        rows.append(
            {
                "dataset": dataset_id,
                "case": case,
                "algos": f"{ours[0]['algo'] if ours else '—'} vs {theirs[0]['algo'] if theirs else '—'}",
                "seeds": sorted({r["seed"] for r in runs}),
                "score_rltrain": score_ours,
                "score_d3rlpy": score_theirs,
                **{f"{key}_ratio": ratios.get(key) for key in TIMES},
                "goal_met": goal,
            }
        )
    return rows


def report(results: list[dict], started: datetime) -> str:
    peer_version = next((r["library"] for r in results if r["library"] != "rltrain"), "d3rlpy")
    lines = [
        f"# Offline RL: rltrain vs {peer_version}, bench started {started:%Y-%m-%d %H:%M}",
        "",
        f"{machine_sentence()} Return: mean ± std of {EVAL_EPISODES} deterministic episodes after training, episode i "
        f"from reset(seed = run seed + {EVAL_SEED_OFFSET} + i) on both sides. Normalized score: 100 (R − ref_min) / "
        "(ref_max − ref_min), the dataset's reference scores. Run s: training and that evaluation, without "
        "interpreter start-up, imports, data loading and building the networks; process s: the whole child process. "
        "Budget: gradient "
        "updates (rltrain's preset total_steps, the same for d3rlpy). Goal: a normalized score equal or better "
        f"than d3rlpy's (mean over seeds) at ≤ {GOAL_WALL_RATIO}x its run s (median over seeds).",
        "",
        "| dataset | case | library | algorithm | seed | updates | return | normalized score | run s | "
        "process wall s | process CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['case']} | {r['library']} | {r['algo']} | {r['seed']} | {r['steps']} | "
            f"{r['return_mean']:.1f} ± {r['return_std']:.1f} | {fmt(r['normalized_score'])} | {r['run_s']:.1f} | "
            f"{r['process_wall_s']:.1f} | {r['process_cpu_s']:.1f} |"
        )
    lines += [
        "",
        "| dataset | case | algorithms | seeds | normalized score rltrain | normalized score d3rlpy | "
        "ratio rltrain / d3rlpy, run s (medians) | ratio, process wall s | ratio, process CPU s | goal met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary_rows(results):
        goal = {True: "yes", False: "no", None: "—"}[row["goal_met"]]
        lines.append(
            f"| {row['dataset']} | {row['case']} | {row['algos']} | {', '.join(map(str, row['seeds']))} | "
            f"{fmt(row['score_rltrain'])} | {fmt(row['score_d3rlpy'])} | {fmt(row['run_s_ratio'], 2)} | "
            f"{fmt(row['process_wall_s_ratio'], 2)} | {fmt(row['process_cpu_s_ratio'], 2)} | {goal} |"
        )
    lines += ["", MAPPING_AND_DIFFERENCES.replace("## ", "### ")]
    return "\n".join(lines) + "\n"


def write_results(results: list[dict], started: datetime) -> Path:
    """bench/results/d3rlpy_<start>.md (the report) and .json (the runs and the summary); the .md's path."""
    path = RESULTS / f"d3rlpy_{started:%Y-%m-%d_%H-%M-%S}.md"
    path.write_text(report(results, started))
    path.with_suffix(".json").write_text(json.dumps({"results": results, "summary": summary_rows(results)}, indent=2))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CASES), help="cases to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--datasets", nargs="*", default=DEFAULT_DATASETS, help="Minari ids (make datasets)")
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON, help="python of d3rlpy's venv")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="OVERRIDE",
        help="extra rltrain overrides (e.g. total_steps=2000); d3rlpy gets the settings of the config they make",
    )
    parser.add_argument(
        "--work", type=Path, default=RESULTS / "runs" / "d3rlpy", help=".npz files, run folders, d3rlpy's results"
    )
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="only write again the report of a finished bench's d3rlpy_*.json"
    )
    args = parser.parse_args()
    if args.report:
        started = datetime.strptime(args.report.stem.removeprefix("d3rlpy_"), "%Y-%m-%d_%H-%M-%S")
        print(f"written: {write_results(json.loads(args.report.read_text())['results'], started)}")
        return
    if not args.peer_python.exists():
        sys.exit(f"{args.peer_python} does not exist; `make bench-d3rlpy` creates d3rlpy's venv.")
    from rltrain import datasets

    missing = sorted(set(args.datasets) - set(datasets.local_ids()))
    if missing:
        root = datasets.dataset_path("")
        sys.exit(f"{', '.join(missing)} not in the Minari root {root}; `make datasets` builds them.")
    cases = args.only or list(CASES)
    check_mappings(cases, args.datasets, args.set)
    work = args.work.resolve()
    (work / "runs").mkdir(parents=True, exist_ok=True)
    env = child_env()

    def log(message: str) -> None:
        print(f"[bench-d3rlpy] {message}", flush=True)

    started = datetime.now().replace(microsecond=0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for dataset_id in args.datasets:
        data, env_id = load_dataset(dataset_id)
        export_npz(data, env_id, npz_path(work, dataset_id))
        for case in cases:
            for seed in args.seeds:
                log(f"{dataset_id} {case} seed {seed}: rltrain ...")
                ours = run_rltrain(case, dataset_id, seed, args.set, work, env)
                log(f"{dataset_id} {case} seed {seed}: d3rlpy {CASES[case][1]} ...")
                theirs = run_d3rlpy(case, dataset_id, seed, ours.pop("config"), work, env, args.peer_python)
                for result in (ours, theirs):
                    result = {"dataset": dataset_id, "case": case, "seed": seed, **result}
                    result["normalized_score"] = data.normalized_score(result["return_mean"])
                    log(
                        f"  {result['library']} {result['algo']}: return {result['return_mean']:.1f}, normalized "
                        f"{fmt(result['normalized_score'])}, run {result['run_s']:.1f} s, process CPU "
                        f"{result['process_cpu_s']:.1f} s"
                    )
                    results.append(result)
                path = write_results(results, started)  # after every pair: a stopped bench keeps what it measured
    print(path.read_text())
    print(f"written: {path}")


if __name__ == "__main__":
    main()
