"""Run files compared as the checkpoint/restart contract says (tests/test_checkpoint.py)."""
import h5py
import numpy as np

# When and how each command started, and the steps a run was resumed at (only in a
# resumed file): everything else must be equal.
VOLATILE = {"created", "command_line", "resumed_at_steps"}


def _objects(path):
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = {k: v for k, v in obj.attrs.items()
                     if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
            data = obj[()] if isinstance(obj, h5py.Dataset) else None
            found[name] = (data, attrs)
        f.visititems(visit)
        found["/"] = (None, dict(f.attrs))
    return found


def assert_same_run_file(reference, resumed, resumed_at):
    """``resumed`` equals the uninterrupted ``reference`` but for VOLATILE; it was resumed
    at the steps ``resumed_at`` ([]: never; ...: at some step)."""
    a, b = _objects(reference), _objects(resumed)
    assert a.keys() == b.keys()
    assert "resumed_at_steps" not in a["/"][1]
    steps = list(b["/"][1].get("resumed_at_steps", []))
    assert len(steps) >= 1 if resumed_at is ... else steps == list(resumed_at)
    for name in a:
        (da, aa), (db, ab) = a[name], b[name]
        if isinstance(da, np.ndarray):
            assert da.dtype == db.dtype and da.shape == db.shape, name
            if da.dtype.hasobject:   # variable-length strings (the dose table)
                assert da.tolist() == db.tolist(), name
            else:
                assert da.tobytes() == db.tobytes(), name
        else:
            assert da == db, name
        aa = {k: v for k, v in aa.items() if k not in VOLATILE}
        ab = {k: v for k, v in ab.items() if k not in VOLATILE}
        assert aa.keys() == ab.keys(), name
        for key in aa:
            np.testing.assert_array_equal(aa[key], ab[key], err_msg=f"{name}:{key}")
            assert type(aa[key]) is type(ab[key]), f"{name}:{key}"
    assert a["/"][1]["status"] == "complete"
