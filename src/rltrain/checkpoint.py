"""Atomic checkpoint files: written to a temporary file in the same folder, then renamed over the target."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from rltrain import schema
from rltrain.errors import RltrainError


def save(payload: dict, path: Path) -> None:
    """Write `payload` to `path` so that a crash leaves either the old file or the new one, never half of one; a
    write that fails (a full disk) is one sentence and leaves the old file as it was."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        directory = os.open(path.parent, os.O_RDONLY)  # the rename itself survives a power cut too
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except (OSError, RuntimeError) as exc:
        # torch.save reports a failed write of the file as a RuntimeError raised while handling the OSError
        error = exc if isinstance(exc, OSError) else exc.__context__
        if not isinstance(error, OSError):
            raise
        reason = error.strerror or str(error)
        raise RltrainError(
            f"Could not write checkpoint {path} ({reason}); the checkpoint there before is intact: make room (or "
            "fix the folder) and continue the run with resume=auto, or resume=<run folder>."
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def remove_leftovers(folder: Path) -> None:
    """Temporary files of checkpoints whose writing was cut short (a killed run); the checkpoints stay."""
    for leftover in Path(folder).glob(".*.pt.*.tmp"):
        leftover.unlink(missing_ok=True)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with weights_only=True and check the shape of its config (schema.check) before anything
    is built from it; a missing or unreadable file, or a config that is damaged or names a class that is not one
    of rltrain's algorithms, is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise RltrainError(f"No checkpoint at {path}; pass a run folder that has checkpoints/last.pt, or a .pt file.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise RltrainError(
            f"Checkpoint {path} is corrupt or not an rltrain checkpoint ({type(exc).__name__}); "
            "use another checkpoint (checkpoints/best.pt or a backup) or start a new run."
        ) from None
    if not isinstance(payload, dict) or "agent" not in payload or "config" not in payload:
        raise RltrainError(f"Checkpoint {path} is not an rltrain checkpoint (no agent state or config in it).")
    schema.check(payload["config"], f"Checkpoint {path}")
    return payload


def resolve(run_or_file: str | Path, name: str = "last.pt") -> Path:
    """A checkpoint path from either a run folder or a checkpoint file."""
    path = Path(run_or_file)
    if path.is_dir():
        return path / "checkpoints" / name
    return path


def rng_state() -> dict:
    """Global RNG states in types that torch.load(weights_only=True) accepts."""
    _, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    key = numpy_state["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached"]))
    random.setstate(state["python"])
