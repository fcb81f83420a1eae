import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rltrain.cli import compose_plain, config_dir

BIN = Path(sys.executable).parent
ALGOS = sorted(p.stem for p in (config_dir() / "algo").glob("*.yaml"))
ENVS = sorted(p.stem for p in (config_dir() / "env").glob("*.yaml") if p.stem != "gym")


def compose_config(*overrides: str) -> dict:
    """The plain config `rltrain <overrides>` would train with."""
    return compose_plain(overrides)


def tiny(config: dict, total_steps: int = 256) -> dict:
    """Shrink a config to a few seconds of training without changing what it exercises."""
    config["total_steps"] = total_steps
    config["eval"]["episodes"] = 2
    config["eval"]["every"] = 0
    config["log"]["progress"] = False
    config["log"]["every"] = 64
    algo = config["algo"]
    if "rollout_steps" in algo:
        algo["rollout_steps"] = min(algo["rollout_steps"], 16)
    if "learning_starts" in algo:
        algo["learning_starts"] = 32
        algo["batch_size"] = 16
    return config


def some_seed_reaches(threshold: float, seeds, train_seed) -> None:
    """The learning tests' pass rule (derived in tests/test_learning.py): train_seed(seed) -> its summary, for each
    seed in order until one's final eval return reaches the threshold; fail naming every seed's return if none."""
    finals = {}
    for seed in seeds:
        finals[seed] = train_seed(seed)["eval_return_mean"]
        if finals[seed] >= threshold:
            return
    pytest.fail(f"no seed of {tuple(seeds)} reached {threshold}: final eval returns {finals}")


def run_cli(*args: str, cwd: Path, timeout: int = 300, script: str = "rltrain", env: dict | None = None):
    """Run an installed console script as a user types it."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "RLTRAIN_FULL_ERROR")}
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [str(BIN / script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def offline_datasets(tmp_path_factory) -> str:
    """The Minari root holding the offline benchmark datasets (`make datasets`: rltrain/pendulum/*-v0 and
    rltrain/cartpole/replay-v0), built once per test session (about 2 minutes) and shared by the xdist workers."""
    from filelock import FileLock

    from rltrain import offline_datasets

    run_uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_uid is None:
        root = tmp_path_factory.mktemp("offline-datasets")
    else:  # one folder for every worker of this test run
        root = tmp_path_factory.getbasetemp().parent / f"offline-datasets-{run_uid}"
        root.mkdir(exist_ok=True)
    with FileLock(str(root / "build.lock")):
        if not (root / "built").exists():
            previous = os.environ.get("MINARI_DATASETS_PATH")
            os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
            try:
                summary = offline_datasets.build(runs=root / "runs", log=lambda line: None)
            finally:
                if previous is None:
                    os.environ.pop("MINARI_DATASETS_PATH", None)
                else:
                    os.environ["MINARI_DATASETS_PATH"] = previous
            (root / "built").write_text(json.dumps(summary, default=str))
    return str(root / "minari")


# Tests that take 3 minutes or more on one core (`make test` prints the slowest; the CQL one builds the offline
# datasets too). They start first, and `make test` hands tests to the xdist workers one at a time
# (--maxschedchunk=1), so that the workers do not end with one of them running a long test while the other waits.
LONGEST = ("lunarlander", "test_pendulum_medium_replay_beats_bc[cql]")


def pytest_collection_modifyitems(config, items):
    """Longest tests first, then the other slow ones, then the rest (a stable sort: file order within each)."""

    def rank(item) -> int:
        if not item.get_closest_marker("slow"):
            return 2
        return 0 if any(name in item.nodeid for name in LONGEST) else 1

    items.sort(key=rank)


@pytest.fixture
def tiny_datasets(tmp_path, monkeypatch) -> None:
    """A one-episode random Pendulum and a three-episode random CartPole dataset under this test's Minari root."""
    pytest.importorskip("minari")
    from rltrain.collect import main as collect

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    collect(["id=test/pendulum/random-v0", "env=Pendulum-v1", "episodes=1", "ref_episodes=1"])
    collect(["id=test/cartpole/random-v0", "env=CartPole-v1", "episodes=3", "ref_episodes=1"])
