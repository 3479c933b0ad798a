"""Numba's on-disk cache is tied to all of ``kernels``' sources (``kernels.jit``).

Numba checks a cached function only against its own file, so without the guard a kernel
that inlines a helper from another module keeps the helper's old code after that module
changes. The end-to-end test below shows that case on a copy of the package.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from kernels import jit as kernel_jit

KERNELS = pathlib.Path(kernel_jit.__file__).parent


def _fill(folder: pathlib.Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


def test_a_stale_stamp_removes_the_cached_kernels_only(tmp_path):
    _fill(tmp_path, ["tumor.run_events-462.py311.nbi", "tumor.run_events-462.py311.1.nbc",
                     "tumor.cpython-311.pyc"])
    (tmp_path / kernel_jit.SOURCES_STAMP).write_text("an older digest")
    assert kernel_jit.drop_stale_caches(tmp_path, "digest") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        kernel_jit.SOURCES_STAMP, "tumor.cpython-311.pyc"])
    assert (tmp_path / kernel_jit.SOURCES_STAMP).read_text() == "digest"


def test_a_matching_stamp_keeps_everything(tmp_path):
    _fill(tmp_path, ["rng.mix64-57.py311.nbi", "rng.mix64-57.py311.1.nbc"])
    (tmp_path / kernel_jit.SOURCES_STAMP).write_text("digest")
    assert kernel_jit.drop_stale_caches(tmp_path, "digest") == 0
    assert len(list(tmp_path.iterdir())) == 3


def test_no_stamp_counts_as_stale_and_a_missing_folder_is_made(tmp_path):
    _fill(tmp_path / "a", ["rng.mix64-57.py311.nbi"])
    assert kernel_jit.drop_stale_caches(tmp_path / "a", "d") == 1
    assert kernel_jit.drop_stale_caches(tmp_path / "b", "d") == 0
    assert (tmp_path / "b" / kernel_jit.SOURCES_STAMP).read_text() == "d"
    assert kernel_jit.drop_stale_caches(None, "d") == 0


def test_the_digest_covers_every_module(tmp_path):
    for name in ("jit.py", "rng.py"):
        (tmp_path / name).write_text("A = 1\n")
    before = kernel_jit.sources_digest(tmp_path)
    (tmp_path / "rng.py").write_text("A = 2\n")
    changed = kernel_jit.sources_digest(tmp_path)
    (tmp_path / "rng.py").write_text("A = 1\n")
    assert changed != before == kernel_jit.sources_digest(tmp_path)
    (tmp_path / "extra.py").write_text("")
    assert kernel_jit.sources_digest(tmp_path) != before


CALLER = """
from kernels.helper_b import value
from kernels.jit import jit


@jit
def caller():
    return value() + 1
"""
HELPER = """
from kernels.jit import inline_jit


@inline_jit
def value():
    return {}
"""


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the JIT")
def test_a_changed_helper_in_another_module_reaches_the_cached_caller(tmp_path):
    """A copy of the package gains a kernel (``caller``) inlining a helper from another
    module; the helper changes between two processes sharing one Numba cache. The second
    process must run the new helper (without the guard it loads ``caller`` from the cache,
    whose own file did not change, and prints the old value)."""
    package = tmp_path / "kernels"
    shutil.copytree(KERNELS, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "helper_a.py").write_text(CALLER)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    probe = textwrap.dedent("""
        from kernels.helper_a import caller
        print(caller(), len(caller.stats.cache_hits))
    """)

    def run(helper_value):
        (package / "helper_b.py").write_text(HELPER.format(helper_value))
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                              text=True, check=True, cwd=tmp_path)
        return tuple(int(x) for x in done.stdout.split())

    assert run(1) == (2, 0)   # compiled and cached
    assert run(1) == (2, 1)   # the same sources: loaded from the cache
    assert run(5) == (6, 0)   # the helper changed: compiled again, not loaded
