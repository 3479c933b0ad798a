"""A calibration wave as a Markdown table, its sets sorted by their largest implausibility:
each set's fitted values, its I, and the wave's estimates of the targets that separate the
sets (the targeted arms' response and complete-response rates by 12 months, BRAF + MEK's
median PFS, anti-PD-1's response rate and 5-year PFS), read from the calibration's
``simulations.csv``:

    python docs/probes/wave_table.py OUT "name 1,name 2,..." [WAVE]

The names head the fitted values' columns, in the order of the calibration file's
parameters. Sets whose simulations are not all in are left out."""
import csv
import sys

SHOWN = ["combi_v_vemurafenib_orr", "combi_v_vemurafenib_cr",
         "combi_v_dabrafenib_trametinib_orr", "combi_v_dabrafenib_trametinib_cr",
         "combi_v_dabrafenib_trametinib_median_pfs", "checkmate067_nivolumab_orr",
         "checkmate067_nivolumab_pfs_60"]


def _months(value: str) -> str:
    return "not reached" if float(value) == float("inf") else f"{float(value):.1f} mo"


def table(out: str, names: list[str], wave: int = 1) -> str:
    with open(f"{out}/simulations.csv", newline="") as f:
        reader = csv.DictReader(f)
        # the fitted keys are the scenario keys (dotted), between the set's index and targets
        keys = [c for c in reader.fieldnames if "." in c]
        rows = [r for r in reader if int(r["wave"]) == wave and r["complete"] == "True"]
    lines = ["| point | " + " | ".join(names) + " | I | BRAF-i ORR / CR | "
             "BRAF+MEK ORR / CR / median PFS | anti-PD-1 ORR / 5-y PFS |",
             "|" + "---|" * (len(names) + 5)]
    for row in sorted(rows, key=lambda r: float(r["max_implausibility"])):
        percent = [f"{100 * float(row[k]):.0f}%" for k in SHOWN]
        fitted = [f"{float(row[k]):.3g}" for k in keys]
        lines.append(f"| {row['point']} | " + " | ".join(fitted) +
                     f" | {float(row['max_implausibility']):.2f} | "
                     f"{percent[0]} / {percent[1]} | {percent[2]} / {percent[3]} / "
                     f"{_months(row[SHOWN[4]])} | {percent[5]} / {percent[6]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1], sys.argv[2].split(","),
                int(sys.argv[3]) if len(sys.argv) > 3 else 1))
