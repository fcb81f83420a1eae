"""The one exception type that the CLIs turn into a single sentence and a non-zero exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class RltrainError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""


def full_error_wanted() -> bool:
    """Whether the user asked for tracebacks with HYDRA_FULL_ERROR=1. rltrain sets HYDRA_FULL_ERROR itself so that
    Hydra raises its config errors instead of printing them (cli.main); the user's own choice travels, to every
    process of a run, in RLTRAIN_FULL_ERROR."""
    return os.environ.get("RLTRAIN_FULL_ERROR", os.environ.get("HYDRA_FULL_ERROR")) == "1"


def console_script(program: str, usage: str, run: Callable[[list[str]], object], argv: list[str] | None) -> None:
    """A key=value console script: --help prints its usage; a RltrainError becomes one sentence and exit status 2
    (HYDRA_FULL_ERROR=1 shows the traceback, as for rltrain)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        return
    try:
        run(argv)
    except RltrainError as exc:
        if full_error_wanted():
            raise
        print(f"{program}: error: {exc}", file=sys.stderr)
        sys.exit(2)


def key_values(argv: list[str], defaults: dict, program: str, usage: str) -> dict:
    """`key=value` arguments over `defaults`; anything else is one sentence naming the argument and the usage."""
    args = dict(defaults)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in defaults:
            raise RltrainError(f"'{arg}' is not an option of {program}. {usage}")
        args[key] = value
    return args
