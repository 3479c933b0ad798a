"""The journal of a run in progress: an append-only, checksummed log (no HDF5 while running).

Why a journal (the SIGKILL strategy). An HDF5 file being written is not crash-safe: HDF5
updates its metadata in place, and a writer killed mid-update (SIGKILL, out of memory,
power loss) leaves a file marked "already open for write" whose metadata may be torn. We
considered three ways out:

- HDF5 SWMR (single-writer / multiple-reader) mode: every dataset must exist before SWMR
  starts and attributes cannot change during it, so neither the run's status nor the
  checkpoints (new objects every few seconds) fit, and a crashed SWMR writer's file still
  needs its status flags cleared (``h5clear``) before ordinary tools open it.
- Closing the file between flushes: a kill *during* a flush (a lattice snapshot of a large
  run takes seconds) still tears the file, and with it every record.
- A journal (chosen): while a run goes, what it records is appended to a plain file as
  self-delimiting, CRC-checked entries and never rewritten. A kill at any moment leaves a
  valid prefix plus at most one torn entry at the end, which the reader detects (length or
  CRC) and ignores. The run file (HDF5) is written once, from the journal, when the run
  completes (or on demand: ``open_run`` of a partial run, ``tumorsim recover``), under a
  unique name, and renamed into place. Snapshot frames go into the journal already
  compressed with the run file's filters (deflate, byte shuffle for floats), so building
  the run file copies them as raw chunks (``write_direct_chunk``) instead of compressing
  twice.

File layout: ``FILE_MAGIC`` then entries, each::

    b"TSJ1" | meta length (u32) | body length (u64) | CRC-32 of meta + body (u32)
    meta: UTF-8 JSON {"kind": ..., ..., "blobs": [{"name", "dtype", "shape", "codec",
                                                   "offset", "nbytes"}, ...]}
    body: the blobs, concatenated (offsets relative to the body)

All integers little-endian. A blob is a numpy array: ``codec`` "raw" (C-order bytes),
"deflate" (zlib stream) or "shuffle+deflate" (HDF5's byte shuffle, then zlib); at levels 1 to
``FAST_LEVEL`` both use deflate's run-length strategy. No pickle.
Entries reach the operating system as they are appended (a SIGKILL loses nothing already
appended); :meth:`JournalWriter.sync` fsyncs them (done before every checkpoint, so after a
power loss the journal holds at least what the latest checkpoint refers to).
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILE_MAGIC = b"tumorsim journal 1\n"
ENTRY_MAGIC = b"TSJ1"
_FRAME = struct.Struct("<4sIQI")
_MAX_META = 1 << 26

# Tests set this to a callable(kind) to pause or stop a writer half-way through an entry
# (the "kill during a snapshot write" fault); None in normal use.
write_hook = None


class JournalError(ValueError):
    pass


def shuffle_bytes(array: np.ndarray) -> bytes:
    """HDF5's shuffle filter: byte k of every element, then byte k + 1, ..."""
    a = np.ascontiguousarray(array)
    size = a.dtype.itemsize
    if size == 1:
        return a.tobytes()
    return a.view(np.uint8).reshape(-1, size).T.tobytes()


def _unshuffle(data: bytes, dtype: np.dtype) -> np.ndarray:
    size = dtype.itemsize
    raw = np.frombuffer(data, np.uint8)
    if size > 1:
        raw = raw.reshape(size, -1).T.copy()
    return raw.view(dtype)


# Deflate's run-length strategy finds repeats of the last byte only, with no search for
# longer matches. A float frame after the byte shuffle has runs in its sign-and-exponent
# bytes and noise in its low mantissa bytes, where the full search finds nothing but spends
# most of its time: on the default run's four 300x300 snapshot fields, 7-8 against ~20 ms
# a snapshot at level 4 for ~8% more bytes. Frames of cell kinds and clones are runs: there
# it is faster and smaller too (1000x1000 with a necrotic core: 6.4 against 10.6 ms, ratio
# 6.3 against 5.2; benchmarks/bench_snapshot_compression.py). Levels 1 to FAST_LEVEL take
# it, higher levels the full search. Either way a frame is one ordinary deflate stream,
# which HDF5's gzip filter reads.
FAST_LEVEL = 4


def deflate(data: bytes, level: int, strategy: int) -> bytes:
    """``data`` as a zlib stream with deflate ``strategy`` (zlib.compress's window and
    memory settings, so the default strategy gives zlib.compress's bytes)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS, 8, strategy)
    return packer.compress(data) + packer.flush()


def encode(array: np.ndarray, codec: str = "raw", level: int = 4) -> bytes:
    array = np.ascontiguousarray(array)
    if codec == "raw":
        return array.tobytes()
    strategy = zlib.Z_RLE if 1 <= level <= FAST_LEVEL else zlib.Z_DEFAULT_STRATEGY
    if codec == "deflate":
        return deflate(array.tobytes(), level, strategy)
    if codec == "shuffle+deflate":
        return deflate(shuffle_bytes(array), level, strategy)
    raise JournalError(f"unknown codec {codec!r}")


def decode(data: bytes, dtype, shape, codec: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    if codec == "raw":
        flat = np.frombuffer(data, dtype)
    elif codec == "deflate":
        flat = np.frombuffer(zlib.decompress(data), dtype)
    elif codec == "shuffle+deflate":
        flat = _unshuffle(zlib.decompress(data), dtype)
    else:
        raise JournalError(f"unknown codec {codec!r}")
    return flat.reshape(shape).copy()


@dataclass
class Blob:
    name: str
    dtype: str
    shape: tuple
    codec: str
    offset: int      # absolute, in the journal file
    nbytes: int


@dataclass
class Entry:
    kind: str
    meta: dict
    offset: int      # of the entry's frame
    end: int         # first byte after the entry
    blobs: dict[str, Blob] = field(default_factory=dict)


class Journal:
    """The valid entries of a journal file (a torn or corrupt tail is left out)."""

    def __init__(self, path):
        self.path = Path(path)
        self.entries: list[Entry] = []
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise JournalError(f"{self.path}: no such file") from None
        self.size = os.fstat(self._file.fileno()).st_size
        if self._file.read(len(FILE_MAGIC)) != FILE_MAGIC:
            self._file.close()
            raise JournalError(f"{self.path}: not a tumorsim journal")
        self.valid_end = len(FILE_MAGIC)
        while self._read_entry():
            pass

    def _read_entry(self) -> bool:
        start = self.valid_end
        head = self._file.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return False
        magic, meta_len, body_len, crc = _FRAME.unpack(head)
        end = start + _FRAME.size + meta_len + body_len
        if magic != ENTRY_MAGIC or meta_len > _MAX_META or end > self.size:
            return False
        meta_bytes = self._file.read(meta_len)
        check = zlib.crc32(meta_bytes)
        remaining = body_len
        while remaining:
            chunk = self._file.read(min(remaining, 1 << 22))
            if not chunk:
                return False
            check = zlib.crc32(chunk, check)
            remaining -= len(chunk)
        if check != crc:
            return False
        try:
            meta = json.loads(meta_bytes)
        except ValueError:
            return False
        body = start + _FRAME.size + meta_len
        blobs = {b["name"]: Blob(b["name"], b["dtype"], tuple(b["shape"]), b["codec"],
                                 body + b["offset"], b["nbytes"])
                 for b in meta.pop("blobs", [])}
        self.entries.append(Entry(meta.pop("kind"), meta, start, end, blobs))
        self.valid_end = end
        return True

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last valid entry (a write cut short, or garbage)."""
        return self.size - self.valid_end

    def raw(self, blob: Blob) -> bytes:
        self._file.seek(blob.offset)
        return self._file.read(blob.nbytes)

    def array(self, entry: Entry, name: str) -> np.ndarray:
        blob = entry.blobs[name]
        return decode(self.raw(blob), blob.dtype, blob.shape, blob.codec)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def jsonable(value):
    """Plain JSON values from numpy scalars and arrays (attributes, summaries)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


class JournalWriter:
    """Appends entries to a journal: a new one (``header`` = (kind, meta), its first entry,
    written under a temporary name and renamed into place, so a journal that exists always
    has one), or an existing one after byte ``append_at`` (what follows is cut off)."""

    def __init__(self, path, *, header: tuple[str, dict] | None = None,
                 append_at: int | None = None):
        self.path = Path(path)
        self._fd: int | None = None
        if append_at is None:
            tmp = self.path.with_name(self.path.name + ".new")
            self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            _write_all(self._fd, FILE_MAGIC)
            self.size = len(FILE_MAGIC)
            if header is not None:
                self.append(*header)
            os.fsync(self._fd)
            os.replace(tmp, self.path)
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
            os.ftruncate(self._fd, append_at)  # drop what follows (a torn tail, or what a
            self.size = append_at              # resumed run recomputes after its checkpoint)
            os.lseek(self._fd, append_at, os.SEEK_SET)

    def append(self, kind: str, meta: dict | None = None,
               blobs: dict[str, tuple[np.ndarray, str, int]] | None = None) -> int:
        """Append one entry; ``blobs``: name -> (array, codec, deflate level). Returns the
        journal's size after it."""
        parts, described, offset = [], [], 0
        for name, (array, codec, level) in (blobs or {}).items():
            data = encode(array, codec, level)
            described.append(dict(name=name, dtype=np.dtype(array.dtype).str,
                                  shape=list(np.shape(array)), codec=codec, offset=offset,
                                  nbytes=len(data)))
            parts.append(data)
            offset += len(data)
        meta_bytes = json.dumps(dict(jsonable(meta or {}), kind=kind, blobs=described),
                                allow_nan=True).encode()
        body = b"".join(parts)
        crc = zlib.crc32(body, zlib.crc32(meta_bytes))
        data = _FRAME.pack(ENTRY_MAGIC, len(meta_bytes), len(body), crc) + meta_bytes + body
        try:
            if write_hook is not None:
                half = len(data) // 2
                _write_all(self._fd, data[:half])
                write_hook(kind)
                _write_all(self._fd, data[half:])
            else:
                _write_all(self._fd, data)
        except BaseException:
            # an exception in this process (Ctrl-C, a full disk) must not leave a torn entry
            # that later entries would follow: cut it off (a kill leaves it last, harmless)
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
            raise
        self.size += len(data)
        return self.size

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
