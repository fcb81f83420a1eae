"""The wheel ships conf/: an installed rltrain runs from an unrelated directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_trains_from_an_unrelated_directory(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = wheels.glob("rltrain-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    assert (site / "rltrain" / "conf" / "config.yaml").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the installed copy comes first on the path; the dependencies come from this environment
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import rltrain.cli, sys; assert 'site' in rltrain.cli.__file__, rltrain.cli.__file__; rltrain.cli.main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "total_steps=128", "eval.episodes=1", "algo.rollout_steps=16"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [summary] = elsewhere.glob("outputs/ppo-cartpole/*/summary.json")
    assert json.loads(summary.read_text())["env_steps"] >= 128
