"""The study directory: arms, where each run's file lives, and whether it is finished."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Arm:
    name: str
    source: str
    toml: str          # the resolved scenario, as text (picklable, hashable)


def run_path(directory, arm: str, replicate: int) -> Path:
    return Path(directory) / "runs" / arm / f"replicate-{replicate:03d}.h5"


def is_complete(path) -> bool:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("status") == "complete"
    except (OSError, KeyError):
        return False
