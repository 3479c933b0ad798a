"""A calibration wave as a Markdown table, its sets sorted by their largest implausibility:
each set's fitted values (in the calibration file's parameter order), its I, and the wave's
estimates of the targets that separate the sets (the targeted arms' response and complete
response rates by 12 months, BRAF + MEK's median PFS, anti-PD-1's response rate and
5-year PFS), from the simulations in the calibration's store:

    python docs/probes/wave_table.py CALIBRATION.toml OUT/store.jsonl "name 1,name 2,..." [WAVE]

CALIBRATION.toml is the file the calibration ran with (``git show REV:scenarios/...`` into
the same folder, so that its relative paths resolve); the names head the fitted values'
columns. Sets with fewer simulations than the file's replicates are left out."""
import json
import sys
from collections import defaultdict

import numpy as np

from simulator.study.calibration import spec, waves

SHOWN = ["combi_v_vemurafenib_orr", "combi_v_vemurafenib_cr",
         "combi_v_dabrafenib_trametinib_orr", "combi_v_dabrafenib_trametinib_cr",
         "combi_v_dabrafenib_trametinib_median_pfs", "checkmate067_nivolumab_orr",
         "checkmate067_nivolumab_pfs_60"]


def table(calibration_file: str, store: str, names: list[str], wave: int = 1) -> str:
    calibration = spec.load(calibration_file)
    by_point = defaultdict(list)
    with open(store) as f:
        for line in f:
            record = json.loads(line)
            if record.get("wave") == wave:
                by_point[record["point"]].append(record)
    rows = []
    for point, records in by_point.items():
        if len(records) < calibration.spec.replicates:
            continue
        result = waves.summarise(calibration, records, wave, point, np.zeros(0),
                                 records[0]["values"])
        rows.append((max(result.implausibility.values()), point, result, records[0]["values"]))
    lines = ["| point | " + " | ".join(names) + " | I | BRAF-i ORR / CR | "
             "BRAF+MEK ORR / CR / median PFS | anti-PD-1 ORR / 5-y PFS |",
             "|" + "---|" * (len(names) + 5)]
    for largest, point, result, values in sorted(rows, key=lambda row: row[0]):
        value = result.value
        percent = [f"{100 * value[k]:.0f}%" for k in SHOWN]
        fitted = [f"{values[p.key]:.3g}" for p in calibration.parameters]
        lines.append(f"| {point} | " + " | ".join(fitted) + f" | {largest:.2f} | "
                     f"{percent[0]} / {percent[1]} | {percent[2]} / {percent[3]} / "
                     f"{value[SHOWN[4]]:.1f} mo | {percent[5]} / {percent[6]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1], sys.argv[2], sys.argv[3].split(","),
                int(sys.argv[4]) if len(sys.argv) > 4 else 1))
