# rltrain — every target creates or updates .venv first when needed.
VENV ?= .venv
PYTHON ?= python3
# the CPU wheel of torch; install it before the project so pip does not pull a CUDA build
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# the HumanCompatibleAI imitation library pins gymnasium 0.29 and stable-baselines3 2.2: it gets its own venv
IMITATION_VENV ?= bench/.venvs/imitation
IMITATION_SPEC ?= imitation>=1.0,<1.1
# d3rlpy 2.8 pins gymnasium 1.0: it gets its own venv too
D3RLPY_VENV ?= bench/.venvs/d3rlpy
D3RLPY_SPEC ?= d3rlpy>=2.8,<2.9

.PHONY: install run train eval test test-fast bench bench-devices bench-imitation bench-d3rlpy robustness datasets offline-table tensorboard lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,video,sweep,cluster,datasets,box2d,mujoco]"
	@touch $(STAMP)

install: $(STAMP)

run: install  ## train the default configuration: PPO on CartPole-v1
	$(VENV)/bin/rltrain $(ARGS)

train: install  ## make train ARGS="algo=sac env=pendulum seed=1"
	$(VENV)/bin/rltrain $(ARGS)

eval: install  ## make eval ARGS="run=outputs/ppo-cartpole/<run> episodes=20 video=true"
	$(VENV)/bin/rltrain-eval $(ARGS)

test: install  ## the whole suite, learning tests included, one test process per core
	$(PY) -m pytest -q -n auto --maxschedchunk=1 --durations=15

test-fast: install  ## everything but the learning tests
	$(PY) -m pytest -q -n auto -m "not slow"

bench: install  ## rltrain vs stable-baselines3 (RL Zoo hyperparameters) -> bench/results/
	$(PY) -m pip install -q --disable-pip-version-check -e ".[bench]"
	@# only rl_zoo3's hyperparameter files are read; its optuna>=3 would break the optuna sweeper's optuna 2.10
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "rl_zoo3>=2.3"
	$(PY) bench/run.py $(ARGS)

$(IMITATION_VENV)/.installed:
	@test -x $(IMITATION_VENV)/bin/python || $(PYTHON) -m venv $(IMITATION_VENV)
	$(IMITATION_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(IMITATION_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(IMITATION_SPEC)"
	@touch $@

bench-imitation: install $(IMITATION_VENV)/.installed  ## BC and GAIL: rltrain vs imitation on the same expert data -> bench/results/
	$(PY) bench/vs_imitation.py --peer-python $(IMITATION_VENV)/bin/python $(ARGS)

$(D3RLPY_VENV)/.installed:
	@test -x $(D3RLPY_VENV)/bin/python || $(PYTHON) -m venv $(D3RLPY_VENV)
	$(D3RLPY_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(D3RLPY_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(D3RLPY_SPEC)"
	@touch $@

bench-d3rlpy: install $(D3RLPY_VENV)/.installed  ## BC, CQL, IQL and AWR/AWAC: rltrain vs d3rlpy on the same Pendulum datasets -> bench/results/ (make datasets first)
	$(PY) bench/vs_d3rlpy.py --peer-python $(D3RLPY_VENV)/bin/python $(ARGS)

bench-devices: install  ## the same short training on device=cpu and device=cuda (where there is a GPU) -> bench/results/
	$(PY) bench/devices.py $(ARGS)

robustness: install  ## fraction of 20 seeds reaching each preset's threshold per CPU kernel path -> bench/results/
	$(PY) bench/robustness.py $(ARGS)

datasets: install  ## the offline benchmark datasets (Pendulum random/medium/medium-replay/expert/medium-expert, CartPole replay)
	$(PY) -m rltrain.offline_datasets $(ARGS)

offline-table: install  ## D4RL-style table: normalized score of each offline algorithm on each dataset -> bench/results/ (make datasets first)
	$(PY) bench/offline.py $(ARGS)

tensorboard: install
	$(VENV)/bin/tensorboard --logdir outputs --host 127.0.0.1

lint: install
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf outputs multirun .pytest_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
