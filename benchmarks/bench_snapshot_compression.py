"""What compressing a run's snapshot frames costs, by deflate level and strategy, and what
the default run gains from the run-length strategy.

Run: ``python benchmarks/bench_snapshot_compression.py [--quick] [--repeats N] [--json PATH]``
(JSON ``benchmarks/results/snapshot_compression.json``; ~45 s, ``--quick`` ~10 s).

Snapshot frames go into the run's journal already compressed (``simulator.output.journal``):
the cell kinds and clones (uint8) by deflate, each snapshot field (float32) by HDF5's byte
shuffle and deflate. Up to ``journal.FAST_LEVEL`` they take deflate's run-length strategy
(``zlib.Z_RLE``): the shuffled low mantissa bytes of a field are noise, in which the default
strategy's match search finds nothing and spends most of its time, and kinds are runs.

1. The frames of the built-in default scenario (300x300, its four snapshot fields) at day
   60, stepped at 1 thread, and (not with ``--quick``) the kinds and clones of
   ``bench_full_step.py``'s 1000x1000 start state (a large tumour with a necrotic core)
   after 8 steps: ms to encode one snapshot's frames (best of the repeats) and the
   compression ratio, per level and strategy.
2. The default run end to end (``tumorsim run --threads 1``, in this process, Numba's cache
   warm): with the run-length strategy at levels 1-4 (as shipped) against the default
   strategy at every level (``FAST_LEVEL = 0``, as before 2026-12-07), alternating; wall
   seconds, run-file bytes, and whether the two run files hold the same datasets.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)
from common import log  # noqa: E402

from simulator import cli  # noqa: E402
from simulator import engine as engine_mod  # noqa: E402
from simulator import scenario as scenario_mod  # noqa: E402
from simulator.output import journal  # noqa: E402

LEVELS = (1, 4, 6, 9)
STRATEGIES = (("default", zlib.Z_DEFAULT_STRATEGY), ("run-length", zlib.Z_RLE))


def snapshot_frames(days: float) -> dict:
    """The default scenario's snapshot frames after ``days``: name -> (array, codec)."""
    scenario = scenario_mod.load(None, ["simulation.duration_days=1000"])
    engine_mod.set_threads(1)
    engine = engine_mod.Engine(scenario)
    while engine.time_days < days:
        engine.step()
    s = engine.state
    frames = {"cell_type": (s.grid(), "deflate"), "clone": (s.grid(s.clone), "deflate")}
    for name in scenario.output.snapshot_fields:
        frames[f"fields/{name}"] = (engine.field(name).astype(np.float32), "shuffle+deflate")
    return frames


def encode_with(array, codec, level, strategy) -> bytes:
    """``journal.encode``'s bytes, with the deflate strategy chosen here."""
    data = (journal.shuffle_bytes(np.ascontiguousarray(array)) if codec == "shuffle+deflate"
            else np.ascontiguousarray(array).tobytes())
    return journal.deflate(data, level, strategy)


def large_tumour_frames() -> dict:
    """The kinds and clones of ``bench_full_step.py``'s 1000x1000 start state after 8
    steps (its necrotic core mixes kinds at random)."""
    import bench_full_step
    engine, _ = bench_full_step.build_start_engine(bench_full_step.side_by_side_start(False),
                                                   "throughout")
    for _ in range(8):
        engine.step()
    s = engine.state
    return {"cell_type": (s.grid(), "deflate"), "clone": (s.grid(s.clone), "deflate")}


def encoding_table(frames: dict, repeats: int, large: dict | None = None) -> list[dict]:
    """Per frame kind (kinds and clones; fields; the large tumour's kinds and clones) x
    level x strategy: best ms per snapshot, bytes in and out."""
    rows = []
    groups = {"kinds and clones (uint8)": [k for k, (_, c) in frames.items() if c == "deflate"],
              "fields (float32, shuffled)": [k for k, (_, c) in frames.items()
                                             if c == "shuffle+deflate"]}
    if large:
        groups["1000^2 kinds and clones"] = [f"large/{k}" for k in large]
        frames = {**frames, **{f"large/{k}": v for k, v in large.items()}}
    for group, names in groups.items():
        if not names:
            continue
        raw = sum(frames[n][0].nbytes for n in names)
        for level in LEVELS:
            for label, strategy in STRATEGIES:
                walls, out = [], 0
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    out = sum(len(encode_with(frames[n][0], frames[n][1], level, strategy))
                              for n in names)
                    walls.append(time.perf_counter() - t0)
                rows.append(dict(frames=group, level=level, strategy=label,
                                 ms_best=1e3 * min(walls), bytes_in=raw, bytes_out=out,
                                 ratio=raw / out))
    return rows


def datasets_equal(a: Path, b: Path) -> bool:
    """Every dataset outside /provenance equal (NaN equal to NaN)."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            if "provenance" in n:
                continue
            x, y = fa[n][()], fb[n][()]
            nan = isinstance(x, np.ndarray) and x.dtype.kind == "f"
            if not np.array_equal(x, y, equal_nan=nan):
                return False
    return True


def default_runs(repeats: int, folder: Path) -> dict:
    """The default run with each setting, alternating: wall s, file bytes, same data."""
    settings = (("run-length at 1-4", journal.FAST_LEVEL), ("default strategy", 0))
    shipped = journal.FAST_LEVEL
    walls = {label: [] for label, _ in settings}
    sizes, paths = {}, {}
    try:
        for r in range(repeats + 1):  # the first round warms the caches, untimed
            for label, fast in settings if r % 2 else settings[::-1]:
                journal.FAST_LEVEL = fast
                path = folder / f"{fast}.h5"
                path.unlink(missing_ok=True)  # (an existing run file makes the CLI say so)
                t0 = time.perf_counter()
                code = cli.main(["run", "--quiet", "--threads", "1", "-o", str(path)])
                wall = time.perf_counter() - t0
                if code:
                    raise RuntimeError(f"tumorsim run exited {code}")
                if r:
                    walls[label].append(wall)
                sizes[label], paths[label] = path.stat().st_size, path
    finally:
        journal.FAST_LEVEL = shipped
    same = datasets_equal(*paths.values())
    return dict(walls_s=walls, file_bytes=sizes, same_datasets=same,
                best_s={k: min(v) for k, v in walls.items()},
                median_s={k: statistics.median(v) for k, v in walls.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: day 20 frames, 3 encoding repeats, one run each way")
    ap.add_argument("--repeats", type=int, default=3, help="default runs each way")
    ap.add_argument("--json", type=Path, default=common.default_json("snapshot_compression"))
    args = ap.parse_args(argv)
    days, enc_repeats, runs = (20.0, 3, 1) if args.quick else (60.0, 9, args.repeats)
    res = common.new_result("snapshot_compression", "quick" if args.quick else "full",
                            dict(frames_day=days, encoding_repeats=enc_repeats,
                                 default_runs_each_way=runs,
                                 fast_level=journal.FAST_LEVEL))
    log("stepping the default scenario for its frames ...")
    frames = snapshot_frames(days)
    large = None
    if not args.quick:
        log("building bench_full_step.py's 1000x1000 start state ...")
        large = large_tumour_frames()
    log("encoding ...")
    res["encoding"] = encoding_table(frames, enc_repeats, large)
    log("the default run both ways ...")
    with tempfile.TemporaryDirectory() as folder:
        res["default_run"] = default_runs(runs, Path(folder))
    common.finish_result(res)

    common.print_header(res, "tumorsim snapshot compression")
    print(f"\nOne snapshot's frames of the default scenario at day {days:g} "
          f"({', '.join(frames)}), best of {enc_repeats}"
          + ("; and the kinds and clones of bench_full_step.py's 1000x1000 state" if large
             else ""))
    print(f"  {'frames':28s} {'level':>5s}  {'strategy':10s} {'ms':>7s} {'ratio':>6s}")
    for row in res["encoding"]:
        print(f"  {row['frames']:28s} {row['level']:5d}  {row['strategy']:10s} "
              f"{row['ms_best']:7.2f} {row['ratio']:6.2f}")
    d = res["default_run"]
    print(f"\nThe default run (tumorsim run --threads 1), {runs} each way, alternating")
    for label in d["walls_s"]:
        print(f"  {label:20s} best {d['best_s'][label]:.2f} s, median "
              f"{d['median_s'][label]:.2f} s, run file {d['file_bytes'][label] / 1e6:.1f} MB")
    print(f"  same datasets both ways: {'yes' if d['same_datasets'] else 'NO'}")
    common.write_json(res, args.json)
    return 0 if d["same_datasets"] else 1


if __name__ == "__main__":
    sys.exit(main())
