"""Where immune-cell migration spends its time: proposals and claims, moves.

Run: ``python benchmarks/profile_migration.py [--quick] [--steps N] [--against REV] [--json PATH]``
(default JSON: ``benchmarks/results/profile_migration.json``; ~1 min on a quiet 2-core
machine).

Starts from ``bench_full_step.py``'s start engine at ``--radius 420`` (1000 x 1000, ~225k
tumour cells, ~14k T cells, ~5.5k suppressive cells) and runs ``steps`` steps per thread
count with ``kernels.immune.migrate`` replaced by the same substep loop driven from Python
(:func:`timed_migrate`), calling the same jitted pieces (``by_site_bucket``; the
proposals with their claims, ``_propose_stretch``, ``_claim_stretch`` and the parallel
``_in_parallel``; the moves with the dropping of agents that cannot move again,
``_move_stretch`` and ``_in_parallel``) with a timer around each. With several chunks
this loop runs each stage as a parallel region of its own (``_in_parallel``), where the
engine's ``migrate`` runs them all in one region with a barrier between stages
(``kernels.team``): at 2 threads the pieces then include ~1.35 us of fork and join per
stage that the engine no longer pays (its migration is timed whole by ``--against`` and
by ``bench_full_step.py``). With claims by parity a substep's two stages also make the
moves and are timed as proposals; the moves are then those made in a stage of their own
(before a recut, a substep that cannot run by parity and the end) and the recut. The
engine's results are
unchanged by the substitution (checked: the final lattice equals an ``Engine.step``
run's). Prints ms per step and ns per agent-substep of each piece, T cells and
suppressive cells together, and the share of substeps whose claims ran in parallel.

``--against REV``: also the migration kernels as they were at git revision REV
(``kernels/immune.py`` and ``kernels/lattice.py`` from ``git show``, loaded as modules of
their own), side by side with today's, loaded the same way from the working tree (the
package's own kernel against its own source so loaded ran 1.15-1.19x faster: loading
alone), on the same inputs: the two ``migrate`` calls (T
cells, suppressive cells) of one step from the start engine, captured, then run on fresh
copies by each version in turn, ``--repeats`` times; best and median ms per step and the
ratio, and whether both versions leave the same lattice, sites, arrival substeps and
substep count (they must: a speed-up may not change a move).

Last, how crowded the movers are, for a scheme that would let an agent far from every other
mover take several substeps alone (its moves cannot meet another's for S substeps when the
nearest other agent of its population is at least 2 S + 1 sites away, Chebyshev): per
population, the quantiles of that distance and the share of agents that far for S = 1, 2,
4, 8, 16 (:func:`isolation`). Every agent counts as a possible mover, which undercounts the
T cells that could go alone (one stopped beside its target moves no more).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_full_step  # noqa: E402
import common  # noqa: E402
from common import log  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from kernels import immune as agents_k  # noqa: E402
from kernels.rng import step_key  # noqa: E402

PIECES = ("setup", "propose", "move")


def timed_migrate(seconds: dict, counts: dict):
    """A drop-in for ``kernels.immune.migrate`` (same arguments, same result) that adds each
    piece's wall seconds to ``seconds`` and the substeps, agent-substeps and substeps whose
    claims ran in parallel to ``counts``. It is ``kernels.immune.migrate``'s loop
    written out in Python around the same jitted pieces."""
    def migrate(kind, clone, seen, attractant, proposal, sites, n, stops, first, last,
                stop_kind, offsets, inv_length, bias, first_tag, move_key, priority_key,
                agent_kind, arrived, n_chunks, team):
        t0 = time.perf_counter()
        order = agents_k.by_site_bucket(sites, n, kind.shape[0])
        order = order[first[order] < last[order]]
        n_active = order.size
        active, agent = sites[order].copy(), order.copy()
        halt, start, stop = stops[order].copy(), first[order].copy(), last[order].copy()
        moved = np.zeros(n_active, np.int64)
        direction = np.full(n_active, agents_k.INERT, np.int64)
        arrived[:n] = 0
        n_substeps = int(stop.max(initial=0))
        n_chunks = max(1, min(n_chunks, n_active))
        bounds, span = agents_k._chunk_spans(active, n_active, n_chunks)
        reach = int(np.abs(offsets).max())

        def chunked(s, mk, base, pk):  # the arguments of _in_parallel after its mode
            return (kind, clone, seen, attractant, proposal, active, agent, halt, start, stop,
                    moved, direction, bounds, span, s, stop_kind, agent_kind, offsets,
                    inv_length, bias, mk, base, pk, sites, arrived, waiting, previous_base)
        seconds["setup"] += time.perf_counter() - t0
        s = by_parity = recut = 0
        gap = 3 * reach
        waiting, previous_base = False, 0
        while s < n_substeps and n_active > 0:
            counts["substeps"] += 1
            counts["agent_substeps"] += n_active
            t0 = time.perf_counter()
            base = (first_tag + s) * agents_k.TAG_UNIT
            mk, pk = np.uint64(step_key(move_key, s)), np.uint64(step_key(priority_key, s))
            if n_chunks == 1:
                agents_k._propose_stretch(kind, clone, seen, attractant, proposal, active, halt,
                                          start, stop, direction, 0, span[0, 0], s, stop_kind,
                                          agent_kind, offsets, inv_length, bias, mk, True, base,
                                          pk)
            elif agents_k._parities_apart(span, gap):  # (the moves run within the regions)
                by_parity += 1
                for parity in range(2):
                    agents_k._in_parallel(parity, *chunked(s, mk, base, pk))
                waiting = True
            else:
                agents_k._in_parallel(agents_k.PROPOSE_ONLY, *chunked(s, mk, base, pk))
                for c in range(n_chunks):
                    agents_k._claim_stretch(proposal, active, direction, bounds[c],
                                            bounds[c] + span[c, 0], offsets, base, pk)
            t1 = time.perf_counter()
            if n_chunks == 1:
                agents_k._move_stretch(kind, proposal, active, agent, halt, start, stop, moved,
                                       direction, 0, span[0, 0], offsets, base, agent_kind, s,
                                       sites, arrived, span, 0)
            elif not waiting:
                agents_k._in_parallel(agents_k.MOVE, *chunked(s, mk, base, pk))
            previous_base = base
            s += 1
            if waiting and (s == n_substeps or agents_k._needs_rebalance(span)
                            or not agents_k._parities_apart(span, gap)):
                agents_k._in_parallel(agents_k.MOVE_EVEN, *chunked(s, mk, base, pk))
                waiting = False
            if waiting:
                n_active = int(span[:, 0].sum())
            else:
                n_active, cut = agents_k._rebalance(active, agent, halt, start, stop, moved,
                                                    bounds, span)
                recut += cut
            seconds["propose"] += t1 - t0
            seconds["move"] += time.perf_counter() - t1
        for c in range(n_chunks):
            kept = slice(bounds[c], bounds[c] + span[c, 0])
            sites[agent[kept]] = active[kept]
            arrived[agent[kept]] = moved[kept]
        counts["coloured"] += by_parity
        return s, by_parity, recut
    return migrate


def load_migration(label: str, text_of):
    """``kernels.immune`` with its ``kernels.lattice`` helpers, their texts from
    ``text_of(name)``, as a module of its own (``migration_<label>_immune``) whose Numba
    cache lives beside it in a git-ignored folder of ``benchmarks/results``."""
    prefix = f"migration_{label}"
    folder = common.RESULTS / f".{prefix}"
    for name in ("immune", "lattice"):
        text = text_of(name).replace("from kernels.lattice import",
                                     f"from {prefix}_lattice import")
        common.write_module(folder / f"{prefix}_{name}.py", text)
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"{prefix}_immune")


def load_migration_at(rev: str):
    """(short sha, ``kernels.immune`` as it was at git revision ``rev``: :func:`load_migration`)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=common.ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return sha, load_migration(sha, lambda name: common.file_at(sha, f"kernels/{name}.py"))


def load_migration_now():
    """Today's ``kernels.immune`` (the working tree's) loaded as :func:`load_migration_at`
    loads a revision's. Timed against a revision it must be loaded the same way: the
    package's own ``migrate`` against the same source loaded as a module of its own ran
    1.15-1.19x faster (2026-12-07, 1 and 2 threads), a difference of loading alone."""
    return load_migration("now", lambda name: (common.ROOT / "kernels" / f"{name}.py")
                          .read_text())


def fresh(args) -> list:
    """A call's arguments with every array copied (``migrate`` changes them in place)."""
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


# what ``migrate`` leaves behind: its arguments kind, sites and arrived
KIND, SITES, ARRIVED = 0, 5, 18


def today_s_arguments(kernel):
    """``kernel`` (a ``migrate`` of some revision) taking today's arguments: revisions
    before 2026-12-07 take no team (the last argument), those before 2026-12-06 no chunk
    count either, and revisions before recognition (T cells stopping beside every tumour
    cell) lack ``clone`` and ``seen``, which the captured calls of a library scenario leave
    empty anyway."""
    count = kernel.py_func.__code__.co_argcount
    if count == 21:
        return kernel

    def migrate(kind, clone, seen, *rest):
        if count >= 19:
            return kernel(kind, clone, seen, *rest[:count - 21])
        if seen.shape[0] and not seen.all():
            raise ValueError("a revision before recognition cannot replay unseen clones")
        return kernel(kind, *rest[:-2])
    return migrate


def captured_migrations(start) -> list:
    """The arguments of every ``kernels.immune.migrate`` call of one step from ``start``."""
    calls = []
    kernel = agents_k.migrate

    def capture(*args):
        calls.append(fresh(args))
        return kernel(*args)
    agents_k.migrate = capture
    try:
        copy.deepcopy(start).step()
    finally:
        agents_k.migrate = kernel
    return calls


def side_by_side(calls, versions: dict, repeats: int, threads: int) -> dict:
    """Each version's ``migrate`` on fresh copies of the captured calls, versions taking
    turns within each repeat; wall ms per step (all calls) and whether every version's
    outputs (lattice, sites, arrivals, substeps) equal the first's."""
    numba.set_num_threads(threads)

    def run(kernel):
        outputs, wall = [], 0.0
        for call in calls:
            args = fresh(call)
            args[-2] = agents_k.chunks_for_agents(args[8], args[9], threads)  # first, last
            args[-1] = threads  # the team
            t0 = time.perf_counter()
            substeps = kernel(*args)
            wall += time.perf_counter() - t0
            if isinstance(substeps, tuple):  # (substeps, by parity[, times cut again])
                substeps = substeps[0]
            outputs.append((substeps, args[KIND], args[SITES], args[ARRIVED]))
        return wall, outputs

    for kernel in versions.values():
        run(kernel)   # compile or load, touch the arrays
    walls = {name: [] for name in versions}
    same = True
    for _ in range(repeats):
        reference = None
        for name, kernel in versions.items():
            wall, outputs = run(kernel)
            walls[name].append(wall)
            if reference is None:
                reference = outputs
            else:
                same &= all(a[0] == b[0] and all(np.array_equal(x, y)
                                                 for x, y in zip(a[1:], b[1:]))
                            for a, b in zip(outputs, reference))
    ms = {name: dict(best=1e3 * min(w), median=1e3 * float(np.median(w)))
          for name, w in walls.items()}
    return dict(threads=threads, repeats=repeats, ms_per_step=ms, identical=bool(same))


ALONE_SUBSTEPS = (1, 2, 4, 8, 16)


def isolation(engine) -> dict:
    """Per population: the Chebyshev distance from each agent to the nearest other one of
    its population (quantiles) and the share at least 2 S + 1 away, per S."""
    from scipy.spatial import cKDTree
    padded = engine.state.geometry.padded
    out = {}
    for name, pop in (("t_cells", engine.immune.t), ("suppressive_cells", engine.immune.s)):
        xyz = np.column_stack(np.unravel_index(pop["sites"][:pop.n], padded))
        nearest = cKDTree(xyz).query(xyz, k=2, p=np.inf)[0][:, 1]
        out[name] = dict(agents=int(pop.n),
                         distance_quantiles={str(q): float(np.quantile(nearest, q))
                                             for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
                         share_alone={str(k): float(np.mean(nearest >= 2 * k + 1))
                                      for k in ALONE_SUBSTEPS})
    return out


def lattice_digest(engine) -> str:
    return hashlib.sha256(engine.state.kind.tobytes()).hexdigest()


def profile(start, steps: int, threads: int) -> dict:
    numba.set_num_threads(threads)
    reference = copy.deepcopy(start)
    for _ in range(steps):
        reference.step()
    seconds = dict.fromkeys(PIECES, 0.0)
    counts = dict(substeps=0, agent_substeps=0, coloured=0)
    engine = copy.deepcopy(start)
    kernel = agents_k.migrate
    agents_k.migrate = timed_migrate(seconds, counts)
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            engine.step()
        wall = time.perf_counter() - t0
    finally:
        agents_k.migrate = kernel
    per_step = {k: 1e3 * v / steps for k, v in seconds.items()}
    return dict(threads=threads, steps=steps, step_ms=1e3 * wall / steps, ms_per_step=per_step,
                substeps_per_step=counts["substeps"] / steps,
                agent_substeps_per_step=counts["agent_substeps"] / steps,
                parallel_claims_share=counts["coloured"] / max(counts["substeps"], 1),
                ns_per_agent_substep={k: 1e9 * seconds[k] / max(counts["agent_substeps"], 1)
                                      for k in PIECES},
                same_result_as_engine_step=lattice_digest(engine) == lattice_digest(reference))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--against", metavar="REV",
                    help="also time the migration kernels of git revision REV side by side")
    ap.add_argument("--repeats", type=int, default=7,
                    help="side-by-side repeats per thread count (with --against)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 400x400 (bench_full_step's quick state), 2 steps, one "
                         "repeat")
    ap.add_argument("--json", type=Path, default=common.default_json("profile_migration"))
    args = ap.parse_args(argv)
    cfg = dict(bench_full_step.side_by_side_start(args.quick), vessels="throughout")
    if args.quick:
        args.steps, args.repeats = 2, 1
    res = common.new_result("profile_migration", "quick" if args.quick else "full",
                            dict(cfg, steps=args.steps, against=args.against,
                                 repeats=args.repeats))
    log("building the start state ...")
    start, res["start"] = bench_full_step.build_start_engine(cfg, "throughout")
    threads_list = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    for t in threads_list:  # warm-up: compile (one chunk at 1 thread, several at 2) and
        profile(start, 1, t)  # touch the arrays
    with common.ForeignCpu() as foreign:
        res["rows"] = [profile(start, args.steps, t) for t in threads_list]
    common.check_foreign(res, foreign.cores, "the profiled steps")
    common.check_loaded_from_cache(res, {f"kernels.immune.{k.__name__}": k for k in (
        agents_k._in_parallel, agents_k._propose_stretch, agents_k._move_stretch)},
        "the profiled steps")
    if args.against:
        sha, old = load_migration_at(args.against)
        calls = captured_migrations(start)
        now = load_migration_now()
        versions = {"now": now.migrate, sha: today_s_arguments(old.migrate)}
        with common.ForeignCpu() as foreign:
            res["side_by_side"] = [side_by_side(calls, versions, args.repeats, t)
                                   for t in threads_list]
        common.check_foreign(res, foreign.cores, "the side-by-side runs")
        common.check_loaded_from_cache(res, {"now": now.migrate, sha: old.migrate},
                                       "the side-by-side runs")
    res["isolation"] = isolation(start)
    common.finish_result(res)
    common.print_header(res, "tumorsim migration profile")
    print(f"\n{args.steps} steps; T-cell and suppressive-cell migration together")
    head = f"  {'thr':>3}{'step ms':>9}" + "".join(f"{p + ' ms':>12}{'ns/ag-sub':>11}"
                                                   for p in PIECES)
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in res["rows"]:
        print(f"  {r['threads']:>3}{r['step_ms']:>9.1f}" + "".join(
            f"{r['ms_per_step'][p]:>12.2f}{r['ns_per_agent_substep'][p]:>11.1f}" for p in PIECES))
    r = res["rows"][0]
    print(f"  {r['agent_substeps_per_step']:.0f} agent-substeps in {r['substeps_per_step']:.0f} "
          "substeps per step; claims in parallel in "
          + ", ".join(f"{x['threads']} thr {100 * x['parallel_claims_share']:.0f}%"
                      for x in res["rows"])
          + " of them; same lattice as Engine.step: "
          + ", ".join(f"{x['threads']} thr {'yes' if x['same_result_as_engine_step'] else 'NO'}"
                      for x in res["rows"]))
    for row in res.get("side_by_side", []):
        now, then = row["ms_per_step"]["now"], row["ms_per_step"][sha]
        print(f"  side by side, {row['threads']} thr, {row['repeats']} repeats (ms per step, "
              f"best / median): now {now['best']:.2f} / {now['median']:.2f}, at {sha} "
              f"{then['best']:.2f} / {then['median']:.2f}; {then['best'] / now['best']:.2f}x "
              f"best, {then['median'] / now['median']:.2f}x median; same moves: "
              + ("yes" if row["identical"] else "NO"))
    print("\nhow far each agent is from the nearest other of its population (Chebyshev sites); "
          "share of agents that could take S substeps alone (nearest >= 2 S + 1)")
    for name, row in res["isolation"].items():
        quantiles = " ".join(f"{v:g}" for v in row["distance_quantiles"].values())
        alone = "  ".join(f"S={k}: {v:.2f}" for k, v in row["share_alone"].items())
        print(f"  {name:18s}{row['agents']:>7} agents; distance at 10/25/50/75/90%: "
              f"{quantiles};  {alone}")
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
