"""The shape a config must have before rltrain builds anything from it: every `_target_` one of rltrain's own
algorithm classes, every section rltrain reads, and values of the types of the shipped defaults.

Configs arrive from the command line and from checkpoints, which may come from someone else: a checkpoint is
data, so a class it names is compared, as a string, with the classes conf/algo/*.yaml name, and nothing is
imported before that check passes.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

import yaml

from rltrain.errors import RltrainError

# group keys that rltrain reads whatever the option (the other keys of a group are checked when present)
REQUIRED_GROUP_KEYS = {
    "algo": ("_target_", "name"),
    "env": ("id",),
    "network": ("hidden", "activation"),
    "device": ("name",),
}


def config_dir() -> Path:
    """conf/ inside an installed wheel, or the repository's top-level conf/ in a source checkout."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


def load_yaml(path: Path) -> dict:
    """A config file as plain data, without its Hydra defaults list (interpolations stay strings)."""
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("defaults", None)
    return data


@cache
def shipped_algorithms() -> dict[str, str]:
    """{algo name: its class}, from conf/algo/*.yaml: the only classes a config may name."""
    return {path.stem: load_yaml(path)["_target_"] for path in sorted((config_dir() / "algo").glob("*.yaml"))}


@cache
def options(group: str) -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in (config_dir() / group).glob("*.yaml")))


@cache
def option_defaults(group: str, option: str) -> dict:
    """The keys and values of conf/<group>/<option>.yaml ({} for an option that is not shipped)."""
    return load_yaml(config_dir() / group / f"{option}.yaml") if option in options(group) else {}


def root_defaults() -> dict:
    data = load_yaml(config_dir() / "config.yaml")
    data.pop("hydra", None)
    return data


def closest(word: str, choices: list[str]) -> str | None:
    """The choice `word` most likely misspells: a close spelling, or the choice its initials spell
    (learning_rate -> lr)."""
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if match:
        return match[0]
    initials = "".join(part[0] for part in word.split("_") if part)
    return initials if len(initials) > 1 and initials in choices else None


def check_targets(node, path: str, where: str) -> None:
    """Every `_target_` anywhere in the config must be one of the shipped algorithm classes."""
    if isinstance(node, dict):
        for key, value in node.items():
            name = f"{path}.{key}" if path else str(key)
            if key == "_target_" and value not in shipped_algorithms().values():
                raise RltrainError(
                    f"{where} names {name}={value}, which is not one of rltrain's algorithms (the classes "
                    "conf/algo/*.yaml name), so it is refused and nothing it names is imported."
                )
            check_targets(value, name, where)


def type_problem(value, default) -> str | None:
    """What `value` should be, when it is not of the kind of the shipped `default`; None if it fits."""
    if default is None or (isinstance(default, str) and "${" in default):
        return None  # no default to compare with, or an interpolation resolved elsewhere
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if integral and not isinstance(value, bool) else f"a whole number (like {default})"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else f"a number (like {default})"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"a string (like {default})"
    if isinstance(default, list):
        if not isinstance(value, list):
            return f"a list (like {default})"
        if default and all(isinstance(d, int) for d in default) and not all(type_problem(v, 1) is None for v in value):
            return f"a list of whole numbers (like {default})"
        return None
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "a mapping of keys to values"
    return None


def check_types(config: dict, defaults: dict, path: str, where: str, required: tuple[str, ...] | None) -> None:
    """The values of `config` against `defaults`. The keys that must be there: `required`, or with None every key
    whose default is not null (at every depth)."""
    for key, default in defaults.items():
        name = f"{path}.{key}" if path else key
        if key not in config:
            if (default is not None) if required is None else key in required:
                raise RltrainError(f"{where or 'the config'} has no {name}; it is damaged or not an rltrain config.")
            continue
        value = config[key]
        problem = type_problem(value, default)
        if problem:
            raise RltrainError(f"{prefix(where)}{name}={value} must be {problem}.")
        if isinstance(default, dict) and default:
            check_types(value, default, name, where, None if required is None else ())


def prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check(config, where: str = "") -> None:
    """Raise a one-sentence RltrainError if `config` is not a config rltrain may build from. `where` names a
    source other than the command line ("checkpoint runs/x/checkpoints/last.pt"). Imports nothing it names."""
    source = where or "the config"
    if not isinstance(config, dict):
        raise RltrainError(f"{source} holds no config mapping; it is damaged or not an rltrain config.")
    check_targets(config, "", source)
    for group in REQUIRED_GROUP_KEYS:
        if not isinstance(config.get(group), dict):
            raise RltrainError(f"{source} has no {group} section; it is damaged or not an rltrain config.")
    check_types(config, root_defaults(), "", where, required=None)
    algo, env = config["algo"], config["env"]
    algo_name = algo.get("name")
    if shipped_algorithms().get(algo_name) != algo.get("_target_"):  # a renamed copy of a shipped algorithm
        algo_name = next((n for n, t in shipped_algorithms().items() if t == algo.get("_target_")), None)
    chosen = {
        "algo": algo_name,
        "env": env.get("name") if env.get("name") in options("env") else "gym",
        "network": "mlp",
        "device": config["device"].get("name"),
    }
    for group, option in chosen.items():
        required = REQUIRED_GROUP_KEYS[group]
        defaults = {key: None for key in required} | option_defaults(group, str(option))
        check_types(config[group], defaults, group, where, required)
