"""A sequence's first line is the first-line arm until it progresses: on the same patients
(one pre-treatment tumour forked into both arms, the same random streams), the sequence's
progression-free time (step-1 PFS, DREAMseq's endpoint) must equal the first-line arm's,
patient by patient. Its rules must switch at the scan where the endpoints call
progression, not before (regimen.first_scan_days / scan_interval_days, the absolute
progression_min_mm rule); a switch before it can let the second line shrink the lesion and
hide the first line's failure."""
import csv
import subprocess
import sys

import pytest

from simulator.scenario import library_dir


@pytest.mark.slow
@pytest.mark.parametrize("first_line, sequence", [
    ("anti_pd1.toml", "anti_pd1_then_targeted.toml"),
    ("targeted_continuous.toml", "targeted_then_anti_pd1.toml"),
])
def test_step_1_pfs_is_the_first_lines(tmp_path, first_line, sequence):
    out = tmp_path / "study"
    subprocess.run([sys.executable, "-m", "simulator", "compare", first_line, sequence,
                    "--replicates", "6", "--workers", "2", "-o", str(out)],
                   cwd=library_dir(), check=True, capture_output=True)
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    by_patient = {}
    for row in rows:
        by_patient.setdefault(row["replicate"], {})[row["arm"]] = row
    first, seq = first_line.removesuffix(".toml"), sequence.removesuffix(".toml")
    progressed = 0
    for arms in by_patient.values():
        a, b = arms[first], arms[seq]
        assert (a["progression_observed"], a["progression_free_days"]) == \
            (b["progression_observed"], b["progression_free_days"])
        progressed += a["progression_observed"] == "True"
    assert progressed > 0, "no first line progressed: the test would prove nothing"
