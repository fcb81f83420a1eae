"""`make datasets` (`python -m rltrain.offline_datasets [pendulum] [cartpole] [seed=0] [overwrite=true]`): the
offline-RL benchmark datasets, rebuilt from a seed with rltrain's own presets and rltrain-collect.

Pendulum-v1, in the spirit of D4RL's locomotion datasets (every one normalized with the same reference scores:
ref_min_score the uniform random policy's mean return, ref_max_score the expert's deterministic eval return):
- rltrain/pendulum/expert-v0         100 episodes of the SAC preset's final policy (2e4 env steps, one update per
                                     two env steps: PENDULUM_SAC), noise 0.1
- rltrain/pendulum/medium-v0         100 episodes of a policy at roughly half the expert's normalized score, noise 0.1:
                                     a second SAC run of the same preset, stopped at its first evaluation whose
                                     normalized score reaches MEDIUM_SCORE
- rltrain/pendulum/medium-replay-v0  every transition that medium run stored in its replay buffer, in order
- rltrain/pendulum/random-v0         100 episodes of the uniform random policy
- rltrain/pendulum/medium-expert-v0  medium-v0 and expert-v0 together
CartPole-v1:
- rltrain/cartpole/replay-v0         the replay buffer of the DQN preset (5e4 env steps, gamma 0.99: CARTPOLE_DQN)
                                     acting with epsilon 0.3 throughout; ref_max_score 500, the env's best return

Datasets that already exist are kept unless overwrite=true; the training runs go under outputs/datasets/.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from pathlib import Path

from rltrain.errors import RltrainError, console_script, key_values

USAGE = (
    "usage: python -m rltrain.offline_datasets [pendulum] [cartpole] [seed=0] [overwrite=false] [runs=outputs/datasets]"
)
EPISODES = 100  # per recorded policy dataset
NOISE = 0.1  # Gaussian action noise of the recorded SAC policies, as a fraction of the action range
MEDIUM_SCORE = 40.0  # the medium run stops at its first evaluation at or above this normalized score
MEDIUM_CHUNK = 250  # env steps between the medium run's evaluations
REF_EPISODES = 100  # episodes of the random policy's reference score
CARTPOLE_EPSILON = 0.3
# the SAC runs behind the Pendulum datasets: the SAC Pendulum preset with one update per two env steps, fixed here
# so that retuning the preset does not change the datasets (and every figure measured on them)
PENDULUM_SAC = ("algo=sac", "env=pendulum", "algo.train_every=2")
# the DQN run behind the CartPole replay: the DQN CartPole preset with gamma 0.99, fixed here for the same reason
CARTPOLE_DQN = ("algo=dqn", "env=cartpole", "algo.gamma=0.99")

PENDULUM_IDS = tuple(
    f"rltrain/pendulum/{name}-v0" for name in ("random", "medium", "medium-replay", "expert", "medium-expert")
)
CARTPOLE_IDS = ("rltrain/cartpole/replay-v0",)


def train(overrides: list[str], run_dir: Path, resume_from: Path | None = None, total_steps: int | None = None):
    """One rltrain run in-process (or the continuation of one, to a larger total_steps); its summary."""
    from rltrain import checkpoint
    from rltrain.cli import compose_plain
    from rltrain.trainer import Trainer

    if resume_from is None:
        config = compose_plain([*overrides, "log.progress=false", "checkpoint.replay_buffer=true"])
        return Trainer(config, run_dir).run()
    payload = checkpoint.load(resume_from)
    config = payload["config"]
    config["total_steps"] = total_steps
    return Trainer(config, run_dir, resume=payload).run()


def collect(*args: str) -> dict:
    from rltrain.collect import run

    return run([*args, "overwrite=true", f"ref_episodes={REF_EPISODES}"])


def train_medium(seed: int, run_dir: Path, ref_min: float, ref_max: float, log) -> tuple[Path, float, int]:
    """SAC from scratch, evaluated every MEDIUM_CHUNK env steps, stopped at the first normalized score at or above
    MEDIUM_SCORE; its checkpoint (with the replay buffer) then holds the medium policy and its replay."""
    overrides = [*PENDULUM_SAC, f"seed={seed}", f"total_steps={MEDIUM_CHUNK}", "eval.every=0"]
    summary = train(overrides, run_dir)
    steps = MEDIUM_CHUNK
    limit = 20000
    while True:
        score = 100 * (summary["eval_return_mean"] - ref_min) / (ref_max - ref_min)
        log(f"  medium run: {steps} env steps, eval return {summary['eval_return_mean']:.1f} (score {score:.0f})")
        if score >= MEDIUM_SCORE:
            return run_dir / "checkpoints" / "last.pt", summary["eval_return_mean"], steps
        if steps >= limit:
            raise RltrainError(
                f"the medium SAC run (seed {seed}) never reached a normalized score of {MEDIUM_SCORE:g} within "
                f"{limit} env steps; try another seed=."
            )
        steps += MEDIUM_CHUNK
        summary = train([], run_dir, resume_from=run_dir / "checkpoints" / "last.pt", total_steps=steps)


def build_pendulum(seed: int, runs: Path, log) -> dict:
    expert_run, medium_run = runs / f"sac-pendulum-expert-seed{seed}", runs / f"sac-pendulum-medium-seed{seed}"
    for run_dir in (expert_run, medium_run):
        shutil.rmtree(run_dir, ignore_errors=True)
    log(f"training the expert: SAC on Pendulum-v1, seed {seed}, 2e4 env steps -> {expert_run}")
    expert = train([*PENDULUM_SAC, f"seed={seed}"], expert_run)
    ref_max = float(expert["eval_return_mean"])
    random = collect(
        f"id={PENDULUM_IDS[0]}", "env=Pendulum-v1", f"episodes={EPISODES}", f"seed={seed}", f"ref_max={ref_max}"
    )
    ref_min = float(random["ref_min_score"])
    log(f"  expert eval return {ref_max:.1f}, random policy {ref_min:.1f}")
    medium_checkpoint, medium_return, medium_steps = train_medium(seed, medium_run, ref_min, ref_max, log)
    recorded = [random]
    noisy = (f"episodes={EPISODES}", f"seed={seed}", f"noise={NOISE}", f"ref_max={ref_max}")
    recorded.append(collect(f"id={PENDULUM_IDS[1]}", f"run={medium_checkpoint}", *noisy))
    recorded.append(collect(f"id={PENDULUM_IDS[2]}", f"run={medium_checkpoint}", "source=replay", f"ref_max={ref_max}"))
    recorded.append(collect(f"id={PENDULUM_IDS[3]}", f"run={expert_run}", *noisy))
    recorded.append(combine(PENDULUM_IDS[4], PENDULUM_IDS[1], PENDULUM_IDS[3]))
    return {
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "medium_env_steps": medium_steps,
        "medium_eval_return": medium_return,
        "datasets": recorded,
    }


def combine(new_id: str, *dataset_ids: str) -> dict:
    """The episodes of several datasets as one, with the first one's reference scores."""
    from rltrain import datasets

    minari = datasets.import_minari()
    parts = [minari.load_dataset(dataset_id) for dataset_id in dataset_ids]
    if datasets.dataset_path(new_id).exists():
        with contextlib.redirect_stdout(io.StringIO()):  # Minari prints a line of its own
            minari.delete_dataset(new_id)
    combined = minari.combine_datasets(parts, new_id)
    first = parts[0].storage.metadata
    combined.storage.update_metadata(
        {
            "ref_min_score": first["ref_min_score"],
            "ref_max_score": first["ref_max_score"],
            "algorithm_name": "+".join(str(p.storage.metadata.get("algorithm_name")) for p in parts),
            "description": "The episodes of " + " and ".join(dataset_ids) + ", recorded by rltrain-collect.",
        }
    )
    return {"id": new_id, "episodes": combined.total_episodes, "steps": combined.total_steps}


def build_cartpole(seed: int, runs: Path, log) -> dict:
    run_dir = runs / f"dqn-cartpole-epsilon{CARTPOLE_EPSILON:g}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    log(f"training DQN on CartPole-v1 with epsilon {CARTPOLE_EPSILON:g} throughout, seed {seed} -> {run_dir}")
    epsilon = [f"algo.eps_start={CARTPOLE_EPSILON}", f"algo.eps_end={CARTPOLE_EPSILON}"]
    summary = train([*CARTPOLE_DQN, f"seed={seed}", "algo.buffer_size=50000", *epsilon], run_dir)
    log(f"  DQN greedy eval return {summary['eval_return_mean']:.1f}")
    replay = collect(f"id={CARTPOLE_IDS[0]}", f"run={run_dir}", "source=replay", "ref_max=500")
    return {"dqn_eval_return": summary["eval_return_mean"], "datasets": [replay]}


RECIPES = {"pendulum": (PENDULUM_IDS, build_pendulum), "cartpole": (CARTPOLE_IDS, build_cartpole)}


def build(
    names=tuple(RECIPES), seed: int = 0, overwrite: bool = False, runs: Path | str = "outputs/datasets", log=print
) -> dict:
    """Build the named recipes' datasets in Minari's root; a recipe whose datasets all exist is skipped unless
    overwrite. Returns what each built recipe measured."""
    from rltrain import datasets

    datasets.import_minari()
    built = {}
    for name in names:
        if name not in RECIPES:
            raise RltrainError(f"no dataset recipe named {name}; pick from {', '.join(RECIPES)}.")
        ids, recipe = RECIPES[name]
        if not overwrite and all(datasets.dataset_path(i).exists() for i in ids):
            log(f"{name}: {', '.join(ids)} already exist (overwrite=true rebuilds them)")
            continue
        start = time.perf_counter()
        built[name] = recipe(seed, Path(runs), log)
        log(f"{name}: built {', '.join(ids)} in {time.perf_counter() - start:.0f} s")
    return built


def run(argv: list[str]) -> dict:
    names = [a for a in argv if "=" not in a] or list(RECIPES)
    args = key_values(
        [a for a in argv if "=" in a],
        {"seed": "0", "overwrite": "false", "runs": "outputs/datasets"},
        "rltrain.offline_datasets",
        USAGE,
    )
    try:
        seed = int(args["seed"])
    except ValueError:
        raise RltrainError(f"seed={args['seed']} must be a whole number.") from None
    return build(names, seed, args["overwrite"].lower() in ("1", "true", "yes"), args["runs"])


def main(argv: list[str] | None = None) -> None:
    console_script("rltrain.offline_datasets", USAGE, run, argv)


if __name__ == "__main__":
    main()
