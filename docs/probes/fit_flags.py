"""The ``--set`` flags that apply a calibration's best fit to any arm, for probes that run
``tumorsim compare`` on library arms with it (a best-fit file is a base scenario, which the
library's arm files, based on ``melanoma.toml``, cannot take as their base):

    eval "$(python docs/probes/fit_flags.py calibration-run8/best_fit.toml FIT8)"
    tumorsim compare anti_pd1.toml --replicates 16 -o probe "${FIT8[@]}"

prints a bash array assignment (default name FIT) of every key the file sets, the
``[[cohort]]`` tables as one ``cohort=[...]`` value."""
import json
import shlex
import sys
import tomllib


def flags(table: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in table.items():
        if key in ("base", "cohort"):
            continue
        if isinstance(value, dict):
            out += flags(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def main(path: str, name: str = "FIT") -> str:
    with open(path, "rb") as f:
        table = tomllib.load(f)
    found = flags(table)
    if table.get("cohort"):
        entries = ("{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in entry.items()) + "}"
                   for entry in table["cohort"])
        found.append(f"cohort=[{', '.join(entries)}]")
    return f"{name}=(" + " ".join(f"--set {shlex.quote(flag)}" for flag in found) + ")"


if __name__ == "__main__":
    print(main(*sys.argv[1:3]))
