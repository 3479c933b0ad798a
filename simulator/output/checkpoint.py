"""Checkpoints: the whole state of an engine in one HDF5 file, generic over its object tree.

The engine's internals change often (new phases, new bookkeeping), so nothing here lists
its attributes. :func:`save` walks the object tree from the engine — its attributes and
theirs: numpy arrays, Python and numpy scalars, str, None, lists, tuples, dicts, sets,
dataclasses and plain objects of tumorsim classes (``__dict__`` and ``__slots__``) — and
:func:`restore` writes the tree back over a fresh engine built from the same scenario.
Randomness is a pure function of (seed, replicate, stream, step, site), so the restored
engine continues bit-identically.

What is *not* stored but referenced, because the fresh engine rebuilds it:

- everything reachable from the root's ``scenario`` attribute (the scenario and its
  sections, e.g. a regimen's ``Drug`` objects): stored as its path in the scenario;
- functions, classes, Numba dispatchers and numpy types: stored as ``module:qualname``;
- bound methods (e.g. the engine's phase list): stored as (owner, method name);
- attributes named in :data:`TRANSIENT` (wall-clock timings, and what one step hands from
  one phase to the next).

Shared references (``immune.state is state``), aliases (an array bound under two names) and
views of one buffer are kept: each object is stored once, later occurrences are references
to its first path, and arrays that view one buffer are stored as that buffer plus each
view's offset, shape and strides. Anything else (object arrays, open files, lambdas,
instances of classes from outside tumorsim) is refused at save time with the path where it
sits, so a new kind of state cannot silently go missing from checkpoints.

Layout of a checkpoint file (no pickle):

- root attributes: ``format`` ("tumorsim checkpoint"), ``format_version``, plus the
  caller's (the recorder stores ``step``, ``time_days``, ``journal_bytes``,
  ``software_version``, ``git_commit``, ``scenario_sha256``, ``seed``, ``replicate``,
  ``arm``, ``created``);
- ``/tree``: the object tree as JSON text, one node ``{"t": TYPE, "v": VALUE, ...}`` per
  value: ``none``, ``bool``, ``int``, ``str``, ``float`` (``float.hex``: exact), ``np``
  (numpy scalar: ``v`` its dtype, ``hex`` its bytes), ``dtype``, ``array`` (``v`` the
  dataset), ``view`` (``v`` the buffer's dataset; ``offset``, ``shape``, ``strides``,
  ``dtype``), ``list`` / ``tuple`` / ``set`` / ``frozenset`` (``v`` the items; sets
  sorted), ``namedtuple`` (``v`` "module:qualname", ``items``),
  ``dict`` (``v`` the [key, value] pairs, in order), ``object`` (``v`` "module:qualname",
  ``attrs`` {name: node}), ``ref`` (``v`` the path of the first occurrence), ``scenario``
  (``v`` the path under the root's scenario), ``global`` ("module:qualname"), ``method``
  (``v`` its name, ``self`` the owner's node);
- ``/arrays/NAME``: one dataset per array buffer, named by the path of its first
  occurrence in the tree (``state.kind``, ``immune.t.arrays['sites']``); dtypes HDF5
  cannot hold are stored as raw bytes with a ``dtype`` attribute.

A restore refuses (:class:`CheckpointMismatch`) when the stored tree does not fit the fresh
engine: another class at a path, or another set of attributes on an object (the engine's
code changed since the checkpoint was written).
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json

import h5py
import numpy as np

FORMAT = "tumorsim checkpoint"
FORMAT_VERSION = 1
TRANSIENT = frozenset({"wall_seconds",   # wall-clock, not state
                       "threads",        # the automatic thread choice: timing, not state
                       # fields solved beside the tumour phase: timing, and hand-overs
                       # within one step (simulator.model.alongside)
                       "_alongside_choice", "_deferred", "solve_started",
                       "_ifn_gamma_solved", "_step_deferred", "_response_alongside",
                       # the second lane's solver workspace (scratch, made when needed)
                       "_second_workspace"})
OWN_MODULES = ("simulator.", "kernels.")
GLOBAL_MODULES = OWN_MODULES + ("numpy", "builtins", "math")
_MISSING = object()


class CheckpointError(ValueError):
    """State that cannot be checkpointed, or a checkpoint that cannot be restored."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint's tree does not fit the engine this software builds."""


def _attr_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _item_path(path: str, key) -> str:
    return f"{path}[{key!r}]"


def _qualified(obj) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _resolve(qualified: str):
    module, _, qualname = qualified.partition(":")
    if not module.startswith(GLOBAL_MODULES):
        raise CheckpointError(f"refusing to import {qualified!r} from a checkpoint")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _attributes(obj) -> dict:
    names = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                names[slot] = getattr(obj, slot)
    return {k: v for k, v in names.items() if k not in TRANSIENT}


def _ultimate_base(array: np.ndarray):
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    return base


def _h5_name(path: str) -> str:
    return path.replace("/", "%2F") or "root"


# ------------------------------------------------------------------------------ saving
_ATOMS = (str, bytes, int, float, bool, type(None), np.generic, tuple)


class _Saver:
    def __init__(self, arrays: h5py.Group, references: dict):
        self.arrays = arrays
        self.seen: dict[int, str] = {}          # id -> path of first occurrence
        self.buffers: dict[int, str] = {}       # id(array owning memory) -> dataset name
        self.alive: list = []                   # keeps ids unique while saving
        self.reference_paths: dict[int, str] = {}
        for name, root in references.items():
            self._index_references(root, name, set())

    def _index_references(self, value, path, visiting):
        if isinstance(value, _ATOMS):
            if isinstance(value, tuple):
                for i, v in enumerate(value):
                    self._index_references(v, _item_path(path, i), visiting)
            return
        if id(value) in visiting:
            return
        visiting.add(id(value))
        self.reference_paths.setdefault(id(value), path)
        self.alive.append(value)
        if isinstance(value, dict):
            for k, v in value.items():
                self._index_references(v, _item_path(path, k), visiting)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._index_references(v, _item_path(path, i), visiting)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                self._index_references(getattr(value, f.name), _attr_path(path, f.name),
                                       visiting)

    def node(self, value, path: str) -> dict:
        if value is None:
            return {"t": "none"}
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, np.generic):
            return {"t": "np", "v": value.dtype.str, "hex": value.tobytes().hex()}
        if isinstance(value, int):
            return {"t": "int", "v": value}
        if isinstance(value, float):
            return {"t": "float", "v": value.hex()}
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if isinstance(value, np.dtype):
            return {"t": "dtype", "v": value.str}
        if isinstance(value, tuple):
            if type(value) is tuple:
                return {"t": "tuple", "v": self._items(value, path)}
            return {"t": "namedtuple", "v": _qualified(self._own_class(value, path)),
                    "items": self._items(value, path)}
        if id(value) in self.reference_paths:
            return {"t": "scenario", "v": self.reference_paths[id(value)]}
        if id(value) in self.seen:
            return {"t": "ref", "v": self.seen[id(value)]}
        if isinstance(value, np.ndarray):
            return self._array(value, path)
        if inspect.ismethod(value):
            return {"t": "method", "v": value.__func__.__name__,
                    "self": self.node(value.__self__, _attr_path(path, "__self__"))}
        if isinstance(value, type) or (callable(value) and not _own(type(value))):
            return self._global(value, path)
        self.seen[id(value)] = path
        self.alive.append(value)
        if isinstance(value, (list, set, frozenset, dict)) and type(value) not in (
                list, set, frozenset, dict):
            raise CheckpointError(f"cannot checkpoint engine.{path}: a subclass of "
                                  f"{type(value).__mro__[1].__name__} ({type(value).__qualname__})")
        if isinstance(value, list):
            return {"t": "list", "v": self._items(value, path)}
        if isinstance(value, (set, frozenset)):
            try:  # canonical order: a set rebuilt from the same items may iterate otherwise
                items = sorted(value)
            except TypeError:
                items = list(value)
            return {"t": type(value).__name__, "v": self._items(items, path)}
        if isinstance(value, dict):
            return {"t": "dict", "v": [[self.node(k, _item_path(path, "key")),
                                        self.node(v, _item_path(path, k))]
                                       for k, v in value.items()]}
        cls = self._own_class(value, path)
        return {"t": "object", "v": _qualified(cls),
                "attrs": {k: self.node(v, _attr_path(path, k))
                          for k, v in _attributes(value).items()}}

    @staticmethod
    def _own_class(value, path):
        cls = type(value)
        if not _own(cls):
            raise CheckpointError(f"cannot checkpoint engine.{path}: a {cls.__module__}."
                                  f"{cls.__qualname__} is not tumorsim state")
        return cls

    def _items(self, values, path):
        return [self.node(v, _item_path(path, i)) for i, v in enumerate(values)]

    def _global(self, value, path):
        try:
            qualified = _qualified(value)
            ok = _resolve(qualified) is value
        except (AttributeError, ImportError, CheckpointError):
            ok = False
        if not ok:
            raise CheckpointError(f"cannot checkpoint engine.{path}: {value!r} is not a "
                                  "module-level function or class")
        return {"t": "global", "v": qualified}

    def _array(self, array: np.ndarray, path: str) -> dict:
        if array.dtype.hasobject:
            raise CheckpointError(f"cannot checkpoint engine.{path}: an object array")
        self.seen[id(array)] = path
        self.alive.append(array)
        base = _ultimate_base(array)
        if base is array or not isinstance(base, np.ndarray):
            name = self.buffers.get(id(array)) or self._store(array, path, array)
            return {"t": "array", "v": name}
        name = self.buffers.get(id(base)) or self._store(base, path + "#buffer", base)
        self.alive.append(base)
        start = array.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return {"t": "view", "v": name, "offset": int(start), "shape": list(array.shape),
                "strides": list(array.strides), "dtype": array.dtype.str}

    def _store(self, array: np.ndarray, path: str, owner: np.ndarray) -> str:
        name = _h5_name(path)
        data = np.ascontiguousarray(array)
        if data.dtype.kind in "biufc":
            self.arrays.create_dataset(name, data=data)
        else:  # datetimes, unicode, structured: exact bytes
            ds = self.arrays.create_dataset(name, data=data.view(np.uint8).reshape(-1))
            ds.attrs.update(dtype=data.dtype.str, shape=list(data.shape))
        self.buffers[id(owner)] = name
        return name


def _own(cls) -> bool:
    return cls.__module__.startswith(OWN_MODULES)


def save(root, path, attrs: dict, references=("scenario",)) -> None:
    """Write ``root``'s object tree to the HDF5 file ``path`` (created or truncated);
    ``attrs`` become root attributes; the subtrees under the ``references`` attributes of
    ``root`` are stored as references, not values. :class:`CheckpointError` names the
    first value that cannot be stored."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, **attrs)
        saver = _Saver(f.create_group("arrays"),
                       {name: getattr(root, name) for name in references})
        saver.seen[id(root)] = ""
        tree = {"t": "object", "v": _qualified(type(root)),
                "attrs": {k: saver.node(v, k) for k, v in _attributes(root).items()
                          if k not in references}}
        f.create_dataset("tree", data=json.dumps(tree), dtype=h5py.string_dtype("utf-8"))


def read_attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a tumorsim checkpoint")
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


# ------------------------------------------------------------------------------ restoring
class _Loader:
    def __init__(self, arrays: h5py.Group, references: dict):
        self.arrays = arrays
        self.references = references
        self.by_path: dict[str, object] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str) -> np.ndarray:
        if name not in self.buffers:
            ds = self.arrays[name]
            data = ds[()]
            if "dtype" in ds.attrs:
                data = data.view(np.dtype(ds.attrs["dtype"])).reshape(tuple(ds.attrs["shape"]))
            self.buffers[name] = np.require(data, requirements=("C", "W", "O"))
        return self.buffers[name]

    def value(self, node: dict, path: str, fresh=_MISSING):
        kind, payload = node["t"], node.get("v")
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            return payload
        if kind == "float":
            return float.fromhex(payload)
        if kind == "np":
            return np.frombuffer(bytes.fromhex(node["hex"]), np.dtype(payload))[0]
        if kind == "dtype":
            return np.dtype(payload)
        if kind == "global":
            return _resolve(payload)
        if kind == "ref":
            if payload not in self.by_path:
                raise CheckpointError(f"checkpoint refers to engine.{payload} before storing it")
            return self.by_path[payload]
        if kind == "scenario":
            return self._reference(payload)
        if kind == "method":
            return getattr(self.value(node["self"], _attr_path(path, "__self__")), payload)
        if kind in ("array", "view"):
            array = self.buffer(payload)
            if kind == "view":
                array = np.ndarray(tuple(node["shape"]), np.dtype(node["dtype"]), buffer=array,
                                   offset=node["offset"], strides=tuple(node["strides"]))
            if isinstance(fresh, np.ndarray) and (fresh.dtype != array.dtype
                                                  or fresh.ndim != array.ndim):
                raise CheckpointMismatch(
                    f"engine.{path}: the checkpoint holds a {array.ndim}-D {array.dtype} "
                    f"array, this software builds a {fresh.ndim}-D {fresh.dtype} one")
            self.by_path[path] = array
            return array
        if kind == "tuple":
            return tuple(self.value(n, _item_path(path, i), _item(fresh, i))
                         for i, n in enumerate(payload))
        if kind == "namedtuple":
            cls = _resolve(payload)
            items = [self.value(n, _item_path(path, i), _item(fresh, i))
                     for i, n in enumerate(node["items"])]
            return cls._make(items) if hasattr(cls, "_make") else cls(items)
        if kind == "list":
            out = self.by_path[path] = []
            out.extend(self.value(n, _item_path(path, i), _item(fresh, i))
                       for i, n in enumerate(payload))
            return out
        if kind in ("set", "frozenset"):
            items = [self.value(n, _item_path(path, i)) for i, n in enumerate(payload)]
            out = self.by_path[path] = set(items) if kind == "set" else frozenset(items)
            return out
        if kind == "dict":
            out = self.by_path[path] = {}
            fresh_items = fresh if isinstance(fresh, dict) else {}
            for k, v in payload:
                key = self.value(k, _item_path(path, "key"))
                out[key] = self.value(v, _item_path(path, key), fresh_items.get(key, _MISSING))
            return out
        if kind == "object":
            return self._object(node, path, fresh)
        raise CheckpointError(f"unknown checkpoint node {kind!r} at engine.{path}")

    def _reference(self, path: str):
        name = next((n for n in self.references
                     if path == n or path.startswith((n + ".", n + "["))), None)
        if name is None:
            raise CheckpointError(f"bad reference path {path!r}")
        return _follow(self.references[name], path[len(name):], path)

    def _object(self, node, path, fresh):
        cls = _resolve(node["v"])
        stored = node["attrs"]
        fresh_attrs = {}
        if fresh is not _MISSING and _own(type(fresh)):
            if type(fresh) is not cls:
                raise CheckpointMismatch(f"engine.{path}: the checkpoint holds a "
                                         f"{cls.__qualname__}, this software builds a "
                                         f"{type(fresh).__qualname__}")
            fresh_attrs = _attributes(fresh)
            _check_names(stored, fresh_attrs, path)
        obj = cls.__new__(cls)
        self.by_path[path] = obj
        for name, child in stored.items():
            value = self.value(child, _attr_path(path, name), fresh_attrs.get(name, _MISSING))
            object.__setattr__(obj, name, value)
        return obj


def _item(fresh, i):
    return fresh[i] if isinstance(fresh, (list, tuple)) and i < len(fresh) else _MISSING


def _follow(obj, rest: str, whole: str):
    """Walk the ``.name`` and ``[key]`` steps (keys as ``repr`` wrote them) from ``obj``."""
    i = 0
    while i < len(rest):
        if rest[i] == ".":
            j = i + 1
            while j < len(rest) and rest[j] not in ".[":
                j += 1
            obj = getattr(obj, rest[i + 1:j])
        elif rest[i] == "[":
            j = _closing_bracket(rest, i)
            obj = obj[ast.literal_eval(rest[i + 1:j])]
            j += 1
        else:
            raise CheckpointError(f"bad reference path {whole!r}")
        i = j
    return obj


def _closing_bracket(text: str, start: int) -> int:
    """Index of the ``]`` closing the ``[`` at ``start`` (skipping quoted keys)."""
    quote, escaped = None, False
    for j in range(start + 1, len(text)):
        c = text[j]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "]":
            return j
    raise CheckpointError(f"bad reference path {text!r}")


def _check_names(stored: dict, fresh: dict, path: str):
    a, b = set(stored), set(fresh)
    if a != b:
        extra, missing = sorted(a - b), sorted(b - a)
        what = "; ".join(part for part in (
            f"only in the checkpoint: {', '.join(extra)}" if extra else "",
            f"only in this software: {', '.join(missing)}" if missing else "") if part)
        raise CheckpointMismatch(f"engine{'.' + path if path else ''}: attributes differ "
                                 f"({what})")


def restore(root, path, references=("scenario",)) -> None:
    """Overwrite ``root``'s tree (a fresh engine built from the checkpoint's scenario) with
    the one stored in ``path``. :class:`CheckpointMismatch` when they do not fit."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a tumorsim checkpoint")
        if f.attrs.get("format_version") != FORMAT_VERSION:
            raise CheckpointMismatch(f"{path}: checkpoint format {f.attrs.get('format_version')}"
                                     f", this software reads {FORMAT_VERSION}")
        tree = json.loads(f["tree"][()])
        if _resolve(tree["v"]) is not type(root):
            raise CheckpointMismatch(f"{path}: a checkpoint of a {tree['v']}, not of a "
                                     f"{_qualified(type(root))}")
        current = {k: v for k, v in _attributes(root).items() if k not in references}
        _check_names(tree["attrs"], current, "")
        loader = _Loader(f["arrays"], {name: getattr(root, name) for name in references})
        loader.by_path[""] = root
        values = {name: loader.value(node, name, current.get(name, _MISSING))
                  for name, node in tree["attrs"].items()}
    for name, value in values.items():
        object.__setattr__(root, name, value)
