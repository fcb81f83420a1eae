"""The Trainer: builds env, agent and logger from a plain config, runs the agent's loop, evaluates, checkpoints."""

from __future__ import annotations

import math
import random
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rltrain import checkpoint, datasets
from rltrain.agent import build_agent, resolve_algorithm, resolve_device
from rltrain.buffers import ReplayBuffer
from rltrain.envs import CheckedEnv, finished_episodes, grid_shape, make_env, make_vector_env
from rltrain.errors import RltrainError
from rltrain.evaluate import EVAL_SEED_OFFSET, evaluate_policy
from rltrain.logger import Logger, write_json
from rltrain.loops import LOOPS
from rltrain.tabular_view import table_image, value_and_policy

COMPILABLE = ("loss", "critic_loss", "actor_loss")  # pure tensor functions torch.compile may wrap
# Ctrl-C, what schedulers send to stop a job (SLURM, Kubernetes), SLURM's --signal ahead of a time limit, and
# submitit's preemption signal: each finishes the current step, writes a checkpoint and stops the run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def divergence_hint(algo_cfg: dict) -> str:
    """What to try against a diverged loss, naming only the keys this algorithm has."""
    rates = [  # lr, actor_lr, value_lr, ...: numbers, not switches such as anneal_lr
        f"algo.{key}"
        for key, value in algo_cfg.items()
        if (key == "lr" or key.endswith("_lr")) and isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    remedies = [f"lower the learning rate{'s' if len(rates) > 1 else ''} ({', '.join(rates)})"] if rates else []
    if "max_grad_norm" in algo_cfg:
        remedies.append("clip gradients harder (algo.max_grad_norm)")
    return f"; {' or '.join(remedies)}." if remedies else "."


class Trainer:
    def __init__(self, config: dict, run_dir: Path, algo_dir: Path | None = None, resume: dict | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        torch.set_num_threads(int(config["threads"]))
        algorithm = resolve_algorithm(config, algo_dir)  # its class and the env's spaces, checked: once per run
        self.action_space_is_discrete = isinstance(algorithm.action_space, gym.spaces.Discrete)
        self.device = resolve_device(config["device"]["name"], list(config["network"]["hidden"]))
        seed = int(config["seed"])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        # what the algorithm's loop needs from the Trainer, read once: which envs, a replay buffer or not
        self.loop = LOOPS.get(algorithm.kind)
        if self.loop is None:
            name = config["algo"]["name"]
            raise RltrainError(f"algo={name} needs the {algorithm.kind} loop, which this build lacks.")
        self.total_steps = int(config["total_steps"])
        self.num_envs = int(config["num_envs"]) if self.loop.env == "vector" else 1
        # demonstrations (offline and imitation algorithms), checked against the env before anything else is built
        self.dataset = datasets.for_run(config, algorithm, self.device)
        # the agent before the envs: a bad hyperparameter fails before any env worker exists
        self.agent = build_agent(algorithm, config, self.device, self.num_envs, dataset=self.dataset)
        self.env = self.envs = None
        env_id = config["env"]["id"]
        if self.loop.env == "single":
            self.env = CheckedEnv(make_env(config["env"]), env_id, lambda: f"at env step {self.step}")
        elif self.loop.env == "vector":
            self.envs = CheckedEnv(
                make_vector_env(config["env"], self.num_envs), env_id, lambda: f"at env step {self.step}"
            )
            self.envs.action_space.seed(seed)
        eval_cfg = config["eval"]
        self.eval_episodes = int(eval_cfg["episodes"])
        self.eval_envs = CheckedEnv(
            make_vector_env(config["env"], min(self.eval_episodes, 16), vectorization="sync"),
            env_id,
            lambda: f"in the evaluation at env step {self.step}",
        )
        if config["device"].get("compile"):
            for name in COMPILABLE:
                if hasattr(self.agent, name):
                    setattr(self.agent, name, torch.compile(getattr(self.agent, name)))
        self.replay = None
        if self.loop.replay:
            action_space = algorithm.action_space
            self.replay = ReplayBuffer(
                min(self.agent.buffer_size, self.total_steps),
                algorithm.observation_space.shape,
                () if self.action_space_is_discrete else action_space.shape,
                torch.long if self.action_space_is_discrete else torch.float32,
                self.device,
                num_envs=self.num_envs,
            )

        self.step = 0
        checkpoint.remove_leftovers(self.run_dir / "checkpoints")
        self.previous_wall_time = 0.0
        self.best_eval = -math.inf
        self.last_eval: tuple[int, float, float] | None = None
        self.normalized_score: float | None = None  # of the last evaluation, for runs with a dataset
        self.eval_history: list[list[float]] = []  # [step, wall time s, mean, std] of each evaluation
        self.loop_state: dict = {}  # what a loop keeps across resumes and reports in summary.json (e.g. regret)
        self.latest_metrics: dict | None = None
        if resume is not None:
            self._restore(resume)
        self.eval_every = int(eval_cfg["every"])
        self.checkpoint_every = int(config["checkpoint"]["every"])
        self.log_every = int(config["log"]["every"])
        self.next_eval = self._next_multiple(self.eval_every)
        self.next_checkpoint = self._next_multiple(self.checkpoint_every)
        self.next_log = self._next_multiple(self.log_every)
        self.next_progress = self.step
        self.progress_every = max(self.num_envs, self.total_steps // 400)
        self.stop_requested = False
        self.stop_signal: int | None = None
        self.handlers_before: dict[int, object] = {}  # the stop signals' handlers before the run, restored after it
        self.logger = Logger(
            self.run_dir,
            self.total_steps,
            self.step,
            bool(config["log"]["progress"]),
            f"{config['algo']['name']} {config['env']['id']}",
            unit=self.loop.step_unit,
        )
        if resume is None:
            self.logger.config(config)

    def _next_multiple(self, every: int) -> float:
        return (self.step // every + 1) * every if every > 0 else math.inf

    # --- called by the loops ------------------------------------------------------------------------------
    def reset_envs(self) -> torch.Tensor:
        # a resumed run starts fresh episodes on new seeds instead of replaying the first ones
        obs, _ = self.envs.reset(seed=int(self.config["seed"]) + self.step)
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device)

    def record_episodes(self, infos: dict) -> None:
        for episodic_return, length in finished_episodes(infos):
            self.record_episode(episodic_return, length)

    def record_episode(self, episodic_return: float, length: int) -> None:
        self.logger.episode(self.step, episodic_return, length)

    def report(self, metrics: dict | None) -> None:
        if metrics is not None:
            self.latest_metrics = metrics

    def advance(self, steps: int, metrics: dict | None) -> bool:
        """Count `steps` env steps; log, evaluate and checkpoint when due. False when the loop must stop."""
        self.step += steps
        self.report(metrics)
        if self.step >= self.next_log:
            self.next_log = self._next_multiple(self.log_every)
            if self.latest_metrics:
                self.check_finite(self.latest_metrics)
                self.logger.scalars(self.step, self.latest_metrics, "losses")
            self.logger.scalars(self.step, {"sps": self.logger.sps(self.step)}, "perf")
        if self.step >= self.next_progress:
            self.next_progress = self.step + self.progress_every
            self.logger.progress(self.step)
        if self.step >= self.next_eval and self.step < self.total_steps:
            self.next_eval = self._next_multiple(self.eval_every)
            self.evaluate()
        if self.step >= self.next_checkpoint and self.step < self.total_steps:
            self.next_checkpoint = self._next_multiple(self.checkpoint_every)
            self.save_checkpoint()
        return not self.stop_requested and self.step < self.total_steps

    def check_finite(self, metrics: dict) -> None:
        """Stop a diverged run (NaN or infinite losses) with one sentence instead of training on garbage."""
        bad = [name for name, value in metrics.items() if not math.isfinite(float(value))]
        if bad:
            raise RltrainError(
                f"training diverged at step {self.step}: {', '.join(bad)} became {float(metrics[bad[0]])}"
                + divergence_hint(self.config["algo"])
            )

    # --- evaluation and checkpoints -----------------------------------------------------------------------
    def evaluate(self) -> tuple[float, float]:
        seed = int(self.config["seed"]) + EVAL_SEED_OFFSET
        returns = evaluate_policy(self.agent, self.eval_envs, self.eval_episodes, seed, self.device)
        mean, std = float(returns.mean()), float(returns.std())
        scalars = {"return_mean": mean, "return_std": std}
        score = self.dataset.normalized_score(mean) if self.dataset is not None else None
        if score is not None:
            scalars["normalized_score"] = self.normalized_score = score
        self.logger.scalars(self.step, scalars, "eval")
        normalized = f" (normalized score {score:.1f})" if score is not None else ""
        episodes = f"{len(returns)} episode" + "s" * (len(returns) > 1)
        self.logger.message(f"eval at step {self.step}: return {mean:.1f} ± {std:.1f} over {episodes}{normalized}")
        self.last_eval = (self.step, mean, std)
        self.eval_history.append([self.step, round(self.wall_time(), 3), mean, std])
        if mean > self.best_eval:
            self.best_eval = mean
            checkpoint.save(self._payload(with_replay=False), self.run_dir / "checkpoints" / "best.pt")
        return mean, std

    def wall_time(self) -> float:
        return self.previous_wall_time + time.perf_counter() - self.start_time

    def _payload(self, with_replay: bool) -> dict:
        payload = {
            "agent": self.agent.state_dict(),
            "config": self.config,
            "step": self.step,
            "wall_time_s": self.wall_time(),
            "best_eval_return_mean": self.best_eval,
            "eval_history": self.eval_history,
            "loop_state": self.loop_state,
            # the losses of the last update: logged again at the next log step, however soon after a resume
            "latest_metrics": {name: float(value) for name, value in (self.latest_metrics or {}).items()},
            "rng": checkpoint.rng_state(),
        }
        if with_replay and self.replay is not None:
            payload["replay"] = self.replay.state_dict()
        return payload

    def save_checkpoint(self) -> Path:
        path = self.run_dir / "checkpoints" / "last.pt"
        # everything logged up to this step reaches the event file first: a run killed after the checkpoint resumes
        # from it and TensorBoard hides what it logged later (Logger's purge_step), so no step is missing or twice
        self.logger.flush()
        checkpoint.save(self._payload(with_replay=bool(self.config["checkpoint"]["replay_buffer"])), path)
        return path

    def _restore(self, payload: dict) -> None:
        self.agent.load_state_dict(payload["agent"])
        self.step = int(payload["step"])
        self.previous_wall_time = float(payload["wall_time_s"])
        self.best_eval = float(payload["best_eval_return_mean"])
        self.eval_history = [list(h) for h in payload["eval_history"]]
        self.loop_state = dict(payload.get("loop_state", {}))
        self.latest_metrics = dict(payload.get("latest_metrics", {})) or None
        if self.replay is not None and "replay" in payload and self.config["checkpoint"]["replay_buffer"]:
            try:
                self.replay.load_state_dict(payload["replay"])
            except (ValueError, TypeError) as exc:
                raise RltrainError(
                    f"The replay buffer in the checkpoint of {self.run_dir} is damaged ({exc}); continue from the "
                    f"best checkpoint, which has none (rltrain resume={self.run_dir}/checkpoints/best.pt), or from "
                    f"this one with an empty buffer that refills (rltrain resume={self.run_dir} "
                    "checkpoint.replay_buffer=false)."
                ) from None
        checkpoint.set_rng_state(payload["rng"])

    # --- the run ------------------------------------------------------------------------------------------
    def _on_stop_signal(self, signum, frame) -> None:
        if self.stop_requested:
            if signum == signal.SIGINT:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            return  # a scheduler repeating itself: the stop is under way
        self.stop_requested = True
        self.stop_signal = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        again = " (Ctrl-C again to abort)" if signum == signal.SIGINT else ""
        self.logger.message(f"{name}: stopping after this step and writing a checkpoint{again}.")

    def forward_stop_signal(self) -> None:
        """Hand the signal that stopped the run, now that its checkpoint is written, to the handler installed before
        the run, if that was a program's own (submitit's requeues the job); Python's and the OS defaults do not
        get it, so the caller decides how to exit."""
        handler = self.handlers_before.get(self.stop_signal)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(self.stop_signal, None)

    def run(self) -> dict:
        self.start_time = time.perf_counter()
        start_step = self.step
        try:
            self.handlers_before = {sig: signal.signal(sig, self._on_stop_signal) for sig in STOP_SIGNALS}
        except ValueError:  # not the main thread (some launchers): signal handling stays with the caller
            self.handlers_before = {}
        try:
            if self.step < self.total_steps or not self.loop.uses_step_budget:
                self.loop.run(self)
        except BaseException:
            self.close()  # flush the curves so far and stop env workers; the last checkpoint stays as it was
            raise
        finally:
            for sig, handler in self.handlers_before.items():
                signal.signal(sig, handler)
        interrupted = self.stop_requested and self.step < self.total_steps
        if not interrupted and (self.last_eval is None or self.last_eval[0] != self.step):
            self.evaluate()
        self.save_checkpoint()
        wall = self.wall_time()
        summary = {
            "algo": self.config["algo"]["name"],
            "env": self.config["env"]["id"],
            "seed": int(self.config["seed"]),
            "env_steps": self.step,
            "step_unit": self.loop.step_unit,
            "eval_return_mean": self.last_eval[1] if self.last_eval else None,
            "eval_return_std": self.last_eval[2] if self.last_eval else None,
            "best_eval_return_mean": self.best_eval if self.best_eval > -math.inf else None,
            **(self.dataset_summary() if self.dataset is not None else {}),
            "wall_time_s": round(wall, 3),
            "sps": round((self.step - start_step) / max(time.perf_counter() - self.start_time, 1e-9), 1),
            "device": str(self.device),
            "interrupted": interrupted,
            "stopped_by": signal.Signals(self.stop_signal).name if interrupted else None,
            "eval_history": self.eval_history,
            "config": self.config,
            **{k: v for k, v in self.loop_state.items() if isinstance(v, (int, float))},
        }
        self.log_value_table()
        if not interrupted:
            self.logger.hparams(
                self.config,
                {
                    "hparams/eval_return_mean": summary["eval_return_mean"],
                    "hparams/best_eval_return_mean": summary["best_eval_return_mean"],
                    "hparams/env_steps": self.step,
                },
            )
        write_json(self.run_dir / "summary.json", summary)
        self.close()
        return summary

    def dataset_summary(self) -> dict:
        return {"dataset": self.dataset.id, "normalized_score": self.normalized_score}

    def log_value_table(self) -> None:
        """A heatmap of V with the greedy policy's arrows, for tabular agents on grid worlds."""
        table = value_and_policy(self.agent)
        shape = grid_shape(self.env) if table is not None and self.env is not None else None
        if shape is not None:
            image = table_image(*table, shape, f"{self.config['algo']['name']} on {self.config['env']['id']}")
            self.logger.writer.add_image("tables/value_and_policy", image, self.step, dataformats="HWC")

    def close(self) -> None:
        self.logger.close()
        for env in (self.env, self.envs, self.eval_envs):
            if env is not None:
                env.close()
