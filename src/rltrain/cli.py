"""`rltrain`: Hydra entry point. Composes the config, validates it, and hands a plain dict to the Trainer."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from rltrain import schema
from rltrain.errors import RltrainError, full_error_wanted
from rltrain.schema import config_dir


def run_id() -> str:
    """A short random id, fixed per process tree, that makes run folders unique within the same second."""
    return os.environ.setdefault("RLTRAIN_RUN_ID", secrets.token_hex(3))


def explicit_resume(resume: str | None) -> bool:
    """resume=<run folder or checkpoint>, as opposed to none or resume=auto."""
    return bool(resume) and resume != "auto"


def dataset_env_name(dataset_id: str) -> str | None:
    """The env name of the run folder of a run on `dataset_id` (the env it was recorded on, which dataset= without
    env= trains on), or None where the dataset cannot tell (the run then fails or names its env itself)."""
    try:
        from rltrain import datasets

        spec, preset = datasets.recorded_env(dataset_id, config_dir() / "env")
    except Exception:  # a missing or unreadable dataset is reported by the run, in one sentence
        return None
    return str(OmegaConf.load(preset).get("name", preset.stem)) if preset is not None else spec.id


def run_dir_for(resume: str | None, algo: str, env: str, dataset: str | None = None) -> str:
    if explicit_resume(resume):
        path = Path(resume)
        return str(path.parents[1] if path.is_file() else path)
    if dataset:  # the folder is composed before the run takes its env from the dataset
        env = dataset_env_name(dataset) or env
    name = re.sub(r"[\w.]+:", "", f"{algo}-{env}")  # env.id=<module>:<id> names its folder by the id alone
    return f"outputs/{name}/{datetime.now():%Y-%m-%d_%H-%M-%S}_{run_id()}"


def sweep_id() -> str:
    """<date>_<time>_<id> of this sweep, fixed in the environment so that every job of it, in whatever process,
    machine or Ray worker the launcher puts it, resolves the same sweep folder (Ray gets it via runtime_env)."""
    return os.environ.setdefault("RLTRAIN_SWEEP_ID", f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{run_id()}")


OmegaConf.register_new_resolver("rltrain_sweep_id", sweep_id, replace=True)
OmegaConf.register_new_resolver("rltrain_run_dir", run_dir_for, replace=True)


def hydra_subdir(resume: str | None, output_dir: str) -> str | None:
    """A run that continues (resume=, resume=auto, a sweep run again) keeps the .hydra/ record of the run it
    continues, and a command refused for a folder that holds a run leaves that run's record as it was."""
    continues = explicit_resume(resume) or (Path(output_dir) / "checkpoints" / "last.pt").exists()
    return None if continues else ".hydra"


OmegaConf.register_new_resolver("rltrain_hydra_subdir", hydra_subdir, replace=True)

# what a resumed run may change; checkpoint.replay_buffer=false resumes with an empty replay buffer
RESUME_OVERRIDABLE = ("resume", "total_steps", "log.progress", "checkpoint.replay_buffer")


def plain_config(cfg: DictConfig) -> dict:
    try:
        config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = exc.full_key
        hint = " (e.g. rltrain env=gym env.id=Acrobot-v1)" if key == "env.id" else ""
        raise RltrainError(f"{key} has no value; set it on the command line{hint}.") from None
    schema.check(config)
    for key in ("total_steps", "num_envs", "threads"):
        if int(config[key]) < 1:
            raise RltrainError(f"{key}={config[key]} must be a positive integer.")
    if int(config["eval"]["episodes"]) < 1:
        raise RltrainError(f"eval.episodes={config['eval']['episodes']} must be at least 1.")
    return config


def compose_plain(overrides) -> dict:
    """The plain config `rltrain <overrides>` trains with, composed without the CLI (tests, benches, dataset builds)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return plain_config(compose(config_name="config", overrides=list(overrides)))


def resumed_config(cfg: DictConfig) -> tuple[dict, dict]:
    """The saved config of the run being resumed (with total_steps optionally extended) and its checkpoint."""
    from rltrain import checkpoint

    overrides = [
        o for o in HydraConfig.get().overrides.task if o.split("=", 1)[0].lstrip("+~") not in RESUME_OVERRIDABLE
    ]
    if overrides:
        raise RltrainError(
            f"resume continues the run's saved config, so {' '.join(overrides)} cannot apply; "
            f"only {', '.join(RESUME_OVERRIDABLE[1:])} may be set with resume=."
        )
    payload = checkpoint.load(checkpoint.resolve(cfg.resume))
    config = payload["config"]
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        if key == "total_steps":
            config["total_steps"] = int(float(value))
        elif key == "log.progress":
            config["log"]["progress"] = value.lower() == "true"
        elif key == "checkpoint.replay_buffer":
            config["checkpoint"]["replay_buffer"] = value.lower() == "true"
    return config, payload


def differences(saved: dict, config: dict, prefix: str = "") -> list[str]:
    """`key=value` (with the saved value) of every setting where `config` differs from `saved`, except those a
    resumed run may change."""
    found = []
    for key in sorted(set(saved) | set(config)):
        name = f"{prefix}{key}"
        theirs, ours = saved.get(key), config.get(key)
        if name in RESUME_OVERRIDABLE:
            continue
        if isinstance(theirs, dict) and isinstance(ours, dict):
            found += differences(theirs, ours, f"{name}.")
        elif theirs != ours:
            found.append(f"{name}={ours} here, {theirs} there")
    return found


def continue_or_start(config: dict, run_dir: Path, auto: bool, continue_with: str) -> float:
    """Train `config` in `run_dir`. With `auto` (resume=auto, a sweep's jobs) a folder whose run finished this
    config is not trained again and one with a checkpoint continues from it; without it a folder that holds a
    run is refused rather than overwritten."""
    last, payload = run_dir / "checkpoints" / "last.pt", None
    if last.is_file() and not auto:
        raise RltrainError(
            f"{run_dir} already holds a run; continue it with resume=auto (or resume={run_dir}), "
            "or train in another folder."
        )
    from rltrain import checkpoint  # heavy imports (torch) once the config is known to be good
    from rltrain.trainer import Trainer

    if last.is_file():
        payload = checkpoint.load(last)
        changed = differences(payload["config"], config)
        if changed:
            raise RltrainError(
                f"{run_dir} holds a run of another config ({'; '.join(changed[:3])}); continue it with its own "
                "settings, or train in another folder."
            )
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        if (
            summary is not None
            and not summary["interrupted"]
            and summary["env_steps"] == payload["step"]
            and int(config["total_steps"]) <= int(payload["config"]["total_steps"])
        ):
            print(f"{run_dir} already finished (final eval return {summary['eval_return_mean']:.1f}); skipped.")
            return summary["eval_return_mean"]
        print(f"Continuing {run_dir} from step {payload['step']}.", flush=True)
    (run_dir / "failed.json").unlink(missing_ok=True)  # a sweep job that failed before and is run again
    trainer = Trainer(config, run_dir, algo_dir=config_dir() / "algo", resume=payload)
    return train_one(trainer, run_dir, continue_with)


def discard_if_empty(run_dir: Path) -> None:
    """Remove what this command wrote to its run folder (Hydra's .hydra/ and job log) when nothing else is in it;
    the folder itself and outputs/<algo>-<env>/ above it only when they are the default layout's, named by this
    command's time and id. A folder given with hydra.run.dir (the working directory, say) may be the user's."""
    hydra = HydraConfig.get()
    records, log = hydra.output_subdir, f"{hydra.job.name}.log"  # records: None with hydra.output_subdir=null
    if not run_dir.is_dir() or any(p.name not in (records, log) for p in run_dir.iterdir()):
        return
    if records:
        shutil.rmtree(run_dir / records, ignore_errors=True)
    (run_dir / log).unlink(missing_ok=True)
    if any(o.startswith("hydra.run.dir=") for o in hydra.overrides.hydra):
        return
    for folder in (run_dir, run_dir.parent):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def train(cfg: DictConfig) -> float | None:
    """One run, or sweep.seeds runs of the same config (the return is their mean final eval return)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    try:
        return train_seeds(cfg, run_dir)
    except RltrainError as exc:
        if not multirun and not explicit_resume(cfg.resume):
            discard_if_empty(run_dir)
        return fail(exc, run_dir, multirun)
    except Exception as exc:  # a bug or a library error: in a sweep, one failed job must not stop the others
        if not multirun:
            raise
        return fail(exc, run_dir, multirun)


def train_seeds(cfg: DictConfig, run_dir: Path) -> float | None:
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    if multirun:
        continue_with = f"the same command and hydra.sweep.dir={HydraConfig.get().sweep.dir}"
    else:
        continue_with = "the same command" if cfg.resume == "auto" else f"rltrain resume={run_dir}"
    if explicit_resume(cfg.resume):
        from rltrain.trainer import Trainer  # heavy imports (torch) once the config is known to be good

        config, payload = resumed_config(cfg)
        trainer = Trainer(config, run_dir, algo_dir=config_dir() / "algo", resume=payload)
        return train_one(trainer, run_dir, continue_with)
    config = plain_config(with_dataset_env(cfg))
    auto = multirun or cfg.resume == "auto"  # a sweep run again skips its finished jobs and continues the others
    seeds = int(config["sweep"]["seeds"])
    if seeds == 1:
        return continue_or_start(config, run_dir, auto, continue_with)
    # several seeds of one setting: each in its own folder, the objective is their mean
    returns = []
    for offset in range(seeds):
        seeded = {**config, "seed": int(config["seed"]) + offset}
        seed_dir = run_dir / f"seed_{seeded['seed']}"
        returns.append(continue_or_start(seeded, seed_dir, auto, continue_with))
    mean = sum(returns) / len(returns)
    from rltrain.logger import write_json

    write_json(
        run_dir / "sweep_result.json",
        {"seeds": [int(config["seed"]) + k for k in range(seeds)], "eval_return_means": returns, "mean": mean},
    )
    print(f"Mean final eval return over {seeds} seeds: {mean:.1f} ({', '.join(f'{r:.1f}' for r in returns)})")
    return mean


def with_dataset_env(cfg: DictConfig) -> DictConfig:
    """`dataset=<id>` without env=: the config composed again on the env the dataset was recorded on."""
    overrides = list(HydraConfig.get().overrides.task)
    # env= or env.id= picks the env; other env keys (env.flatten_observation=true) apply to the dataset's env
    if cfg.get("dataset") is None or any(o.lstrip("+~").split("=")[0] in ("env", "env.id") for o in overrides):
        return cfg
    from hydra import compose

    from rltrain import datasets

    env = datasets.env_overrides(cfg.dataset, config_dir() / "env")  # first, so the user's env.kwargs win
    return compose(config_name="config", overrides=env + overrides)


def train_one(trainer, run_dir: Path, continue_with: str) -> float:
    summary = trainer.run()
    print_artifacts(run_dir, summary, continue_with)
    if summary["interrupted"]:
        trainer.forward_stop_signal()  # under submitit, its handler requeues the job, which then continues
        sys.exit(128 + trainer.stop_signal)  # as a shell reports a process the signal ended: 130 for Ctrl-C
    return summary["eval_return_mean"]


def fail(exc: Exception, run_dir: Path, multirun: bool) -> None:
    """A single run exits 2 with one sentence; a sweep job records the failure and lets the sweep go on."""
    if full_error_wanted():
        raise exc
    message = str(exc) if isinstance(exc, RltrainError) else f"{type(exc).__name__}: {exc}"
    print(f"rltrain: error: {message}", file=sys.stderr)
    if not multirun:
        sys.exit(2)
    from rltrain.logger import write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "failed.json", {"error": message, "overrides": list(HydraConfig.get().overrides.task)})
    return None  # the Optuna sweeper records a trial without a value as failed (a NaN would break it)


def print_artifacts(run_dir: Path, summary: dict, continue_with: str) -> None:
    unit = summary.get("step_unit", "env steps")
    if summary["interrupted"]:
        at = f"{unit.removesuffix('s')} {summary['env_steps']}"  # env step 5000, update 300
        print(f"Stopped at {at}; checkpoint saved in {run_dir}. Continue with {continue_with}.", flush=True)
        return
    mean, std = summary["eval_return_mean"], summary["eval_return_std"]
    if unit == "env steps":
        work = f"{summary['env_steps']} steps in {summary['wall_time_s']:.1f} s ({summary['sps']:.0f} sps)"
    elif unit in summary:  # a loop that counts its own axis (dynamic programming: sweeps of the model)
        work = f"{summary[unit]} {unit} in {summary['wall_time_s']:.2f} s"
    else:  # a loop that advances the step axis by something else (offline: gradient updates on a dataset)
        work = f"{summary['env_steps']} {unit} in {summary['wall_time_s']:.1f} s ({summary['sps']:.0f} {unit}/s)"
    score = summary.get("normalized_score")
    normalized = f", normalized score {score:.1f}" if score is not None else ""
    print(
        f"Done: {summary['algo']} on {summary['env']}, {work}; final eval return {mean:.1f} ± {std:.1f} "
        f"(best {summary['best_eval_return_mean']:.1f}){normalized}\n"
        f"  run folder:  {run_dir}\n"
        f"  summary:     {run_dir / 'summary.json'}\n"
        f"  checkpoint:  {run_dir / 'checkpoints' / 'last.pt'} (best: {run_dir / 'checkpoints' / 'best.pt'})\n"
        f"  TensorBoard: tensorboard --logdir {run_dir}\n"
        f"  evaluate:    rltrain-eval run={run_dir}"
    )


def hydra_problem(exc: Exception) -> str:
    """One sentence for one of Hydra's config errors: an unknown group option with the choices, an unknown key with
    the closest one; anything else Hydra says, on one line."""
    cause = exc.__cause__
    options = getattr(exc, "options", None)
    missing = getattr(exc, "missing_cfg_file", None)
    if options and missing and "/" in missing:
        group, option = missing.rsplit("/", 1)
        close = schema.closest(option, options)
        hint = f" (did you mean {group}={close}?)" if close else ""
        return f"{group}={option} is not an option of {group}{hint}; the choices are {', '.join(options)}."
    parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
    typed = re.match(r"Could not override '([^']+)'", str(exc))
    if typed and isinstance(parent, DictConfig) and isinstance(key, str):
        typed_key = typed.group(1)
        full_key = str(cause.full_key)
        above = full_key[: -len(key)].rstrip(".")  # the section that lacks `key` ("" at the top level)
        keys = [k for k in parent if k != "hydra"]
        if above.split(".")[-1] == "kwargs":  # free-form keyword arguments (env.kwargs): new keys take a +
            append = re.search(r"use (\+\S+)", str(exc))  # Hydra's own suggestion, the user's value in it
            fix = append.group(1) if append else f"+{typed_key}=<value>"
            return f"{typed_key} is a new key of {above}, which takes new keys with a +: {fix}."
        close = schema.closest(key, keys)
        if close:
            suggestion = ".".join(p for p in (above, close) if p) + typed_key[len(full_key) :]
            return f"{typed_key} is not a key of the config; did you mean {suggestion}?"
        return f"{typed_key} is not a key of the config; {above or 'the top level'} has {', '.join(keys)}."
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def main() -> None:
    # Hydra prints its own config errors over many lines and exits 1, unless HYDRA_FULL_ERROR=1 makes it raise them:
    # set it for Hydra, keep the user's own choice (errors.full_error_wanted), and report them in one sentence
    os.environ.setdefault("RLTRAIN_FULL_ERROR", os.environ.get("HYDRA_FULL_ERROR", "0"))
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        train()
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error_wanted():
            raise
        print(f"rltrain: error: {hydra_problem(exc)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
