import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rltrain.cli import config_dir, plain_config

BIN = Path(sys.executable).parent
ALGOS = sorted(p.stem for p in (config_dir() / "algo").glob("*.yaml"))
ENVS = sorted(p.stem for p in (config_dir() / "env").glob("*.yaml") if p.stem != "gym")


def compose_config(*overrides: str) -> dict:
    """The plain config `rltrain <overrides>` would train with."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return plain_config(compose(config_name="config", overrides=list(overrides)))


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
