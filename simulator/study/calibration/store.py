"""The simulation store: one JSON line per finished task (a parameter set x a replicate,
every arm), appended and flushed as each task ends, so an interrupted calibration resumes
by rerunning the same command and reusing every stored line whose key matches.

A line's key is the SHA-256 of everything that determines the simulation: the resolved
scenario text of every arm (parameter values and seed included), the replicate and the
software version (DESIGN.md: a resumed study reuses only what matches exactly). A torn
last line (the process killed mid-write) is ignored and its task rerun.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path


def task_key(arm_tomls, replicate: int, version: str) -> str:
    digest = hashlib.sha256()
    for text in arm_tomls:
        digest.update(text.encode())
        digest.update(b"\0")
    digest.update(f"{replicate}|{version}".encode())
    return digest.hexdigest()


def jsonable(value):
    """JSON has no NaN or inf: store them as strings and read them back as floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def _restore(value):
    if value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


class Store:
    """Append-only JSON-lines file of task records ``{"key", "wave", "point", "replicate",
    "values", "status", "error", "arms": {arm: endpoint dict}}``."""

    def __init__(self, path):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self._torn_tail = False
        if self.path.exists():
            text = self.path.read_text()
            self._torn_tail = bool(text) and not text.endswith("\n")
            for line in text.splitlines():
                try:
                    record = _restore(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line: the task runs again
                self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def append(self, record: dict):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            if self._torn_tail:  # end the torn line so this record starts its own
                fh.write("\n")
                self._torn_tail = False
            fh.write(json.dumps(jsonable(record), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[record["key"]] = record
