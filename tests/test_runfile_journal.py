"""The journal of a run in progress: whatever a kill leaves is a readable prefix."""
import zlib

import h5py
import numpy as np
import pytest

from simulator.output import journal
from simulator.output.journal import Journal, JournalWriter


def _write_sample(path):
    rng = np.random.default_rng(3)
    frames = {"cell_type": rng.integers(0, 7, (9, 11), dtype=np.uint8),
              "field": rng.random((9, 11)).astype(np.float32)}
    w = JournalWriter(path, header=("header", {"attrs": {"seed": 1}, "note": "é"}))
    w.append("records", {"n": 3}, {"time_days": (np.array([0.0, 0.25, 0.5]), "raw", 0),
                                   "cells": (np.array([5, 6, 7]), "raw", 0)})
    w.append("snapshot", {"time_days": 0.5},
             {"cell_type": (frames["cell_type"], "deflate", 4),
              "field": (frames["field"], "shuffle+deflate", 4)})
    w.append("records", {"n": 1}, {"time_days": (np.array([0.75]), "raw", 0),
                                   "cells": (np.array([9]), "raw", 0)})
    w.append("finished")
    w.close()
    return frames


def test_entries_round_trip_with_every_codec(tmp_path):
    path = tmp_path / "journal"
    frames = _write_sample(path)
    with Journal(path) as j:
        assert [e.kind for e in j.entries] == ["header", "records", "snapshot", "records",
                                               "finished"]
        assert j.entries[0].meta == {"attrs": {"seed": 1}, "note": "é"}
        assert j.array(j.entries[1], "cells").tolist() == [5, 6, 7]
        for name, frame in frames.items():
            got = j.array(j.entries[2], name)
            assert got.dtype == frame.dtype and np.array_equal(got, frame)
        assert j.torn_bytes == 0


def test_every_truncation_reads_as_the_entries_before_it(tmp_path):
    """A kill at any byte of any write leaves a prefix of whole entries: the reader never
    fails and never returns a torn entry; appending after the valid end carries on."""
    full = tmp_path / "journal"
    _write_sample(full)
    data = full.read_bytes()
    with Journal(full) as j:
        ends = [e.end for e in j.entries]
    cut = tmp_path / "cut"
    for size in range(len(journal.FILE_MAGIC), len(data) + 1):
        cut.write_bytes(data[:size])
        with Journal(cut) as j:
            assert j.valid_end == max(e for e in [len(journal.FILE_MAGIC), *ends] if e <= size)
            assert len(j.entries) == sum(e <= size for e in ends)
    cut.write_bytes(data[:ends[1] + 7])
    with Journal(cut) as j:
        w = JournalWriter(cut, append_at=j.valid_end)
    w.append("records", {"n": 0})
    w.close()
    with Journal(cut) as j:
        assert [e.kind for e in j.entries] == ["header", "records", "records"]


def test_a_corrupt_byte_ends_the_journal_there(tmp_path):
    path = tmp_path / "journal"
    _write_sample(path)
    with Journal(path) as j:
        snapshot = j.entries[2]
    data = bytearray(path.read_bytes())
    data[snapshot.end - 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with Journal(path) as j:
        assert [e.kind for e in j.entries] == ["header", "records"]


def test_an_exception_during_an_append_leaves_no_torn_entry(tmp_path):
    path = tmp_path / "journal"
    w = JournalWriter(path, header=("header", {}))

    def interrupt(kind):
        raise KeyboardInterrupt

    journal.write_hook = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            w.append("records", {"n": 1}, {"x": (np.arange(1000), "raw", 0)})
    finally:
        journal.write_hook = None
    w.append("finished")
    w.close()
    with Journal(path) as j:
        assert [e.kind for e in j.entries] == ["header", "finished"] and j.torn_bytes == 0


@pytest.mark.parametrize("dtype, shuffle", [(np.uint8, False), (np.float32, True)])
@pytest.mark.parametrize("level", [0, 1, journal.FAST_LEVEL, 6, 9])
def test_journal_frames_are_valid_hdf5_chunks(tmp_path, dtype, shuffle, level):
    """Snapshot frames go into the run file as raw chunks: HDF5's own deflate (and
    shuffle) filters must read them back exactly, whichever deflate strategy wrote them."""
    frame = (np.random.default_rng(1).random((2, 5, 7)) * 200).astype(dtype)
    codec = "shuffle+deflate" if shuffle else "deflate"
    with h5py.File(tmp_path / "f.h5", "w") as f:
        ds = f.create_dataset("x", shape=(1, 2, 5, 7), dtype=dtype, chunks=(1, 2, 5, 7),
                              compression="gzip", compression_opts=level, shuffle=shuffle)
        ds.id.write_direct_chunk((0, 0, 0, 0), journal.encode(frame, codec, level))
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert np.array_equal(f["x"][0], frame)


def _run_length(data: bytes, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_RLE)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("level", range(10))
def test_frames_take_the_run_length_strategy_at_fast_levels(level):
    """Levels 1 to FAST_LEVEL compress frames (kinds; shuffled floats) with deflate's
    run-length strategy (no match search), the others exactly as ``zlib.compress``; the
    two differ at every level but 0 (stored), so the test tells them apart."""
    frame = np.random.default_rng(2).random((40, 30)).astype(np.float32)
    fast = 1 <= level <= journal.FAST_LEVEL
    for array, codec, data in ((frame, "shuffle+deflate", journal.shuffle_bytes(frame)),
                               ((frame * 7).astype(np.uint8), "deflate",
                                (frame * 7).astype(np.uint8).tobytes())):
        expected = _run_length(data, level) if fast else zlib.compress(data, level)
        assert journal.encode(array, codec, level) == expected, codec
        assert (_run_length(data, level) == zlib.compress(data, level)) == (level == 0)
