"""Where a run in progress lives: the partial directory beside its target.

While ``tumorsim run -o OUT.h5`` works, ``OUT.h5`` itself is not touched (it keeps the
previous complete file, if any). The run lives in ``OUT.h5.partial-<pid>-<n>/`` (unique per
process and attempt; a resumed run is renamed to its new process's name), holding:

- ``journal`` — the records, snapshots and events so far (:mod:`simulator.output.journal`);
- ``checkpoint.h5`` — the whole engine state at a recent step (:mod:`.checkpoint`),
  replaced atomically every ``output.checkpoint_every_seconds``;
- ``run.h5`` — only for the moment the finished run file is written, before it is renamed
  onto ``OUT.h5``.

The writer holds ``OUT.h5``'s lock (:mod:`.atomic`) the whole time. A partial directory
whose target is unlocked is an interrupted run: ``tumorsim inspect`` / ``plot`` read it
directly (status "incomplete"), ``tumorsim recover`` writes its run file, ``tumorsim
resume`` continues it from its checkpoint. When the run completes, the partial directory is
removed.
"""
from __future__ import annotations

import re
from pathlib import Path

from simulator.output import atomic

TAG = "partial"
JOURNAL = "journal"
CHECKPOINT = "checkpoint.h5"
BUILD = "run.h5"
_NAME = re.compile(r"^(?P<target>.+)\.partial-\d+-\d+$")


def is_partial(path) -> bool:
    path = Path(path)
    return bool(_NAME.match(path.name)) and (path / JOURNAL).is_file()


def target_of(partial) -> Path:
    partial = Path(partial)
    match = _NAME.match(partial.name)
    if not match:
        raise ValueError(f"{partial}: not a partial run directory")
    return partial.with_name(match["target"])


def partials_of(target) -> list[Path]:
    """Partial directories of ``target``, oldest first."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    found = [p for p in target.parent.glob(f"{_glob_escape(target.name)}.{TAG}-*")
             if is_partial(p) and target_of(p) == target]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_debris(target) -> None:
    """Remove what killed writers of ``target`` left that holds no run: partial directories
    without a journal (killed before its header was in place) and temporary files. Call
    only while holding ``target``'s lock (no live writer then)."""
    target = Path(target)
    for p in target.parent.glob(f"{_glob_escape(target.name)}.{TAG}-*"):
        if _NAME.match(p.name) and p.is_dir() and not (p / JOURNAL).is_file():
            atomic.remove(p)
    for p in target.parent.glob(f".{_glob_escape(target.stem)}.tmp-*{_glob_escape(target.suffix)}"):
        atomic.remove(p)


def new_partial(target) -> Path:
    return atomic.unique_sibling(target, TAG, directory=True)


def journal_path(partial) -> Path:
    return Path(partial) / JOURNAL


def checkpoint_path(partial) -> Path:
    return Path(partial) / CHECKPOINT


def running(partial) -> bool:
    """True while a live process writes this partial run (holds its target's lock)."""
    return atomic.is_locked(target_of(partial))
