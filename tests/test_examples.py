"""The student examples (examples/*.py) run end to end in --quick mode and draw their
figures. They are scripts, not a package, so each is imported from its file."""
import importlib.util

import pytest

from conftest import ROOT, needs_jit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXAMPLES = {
    "why_targeted_therapy_relapses": ["clonal_dynamics.png", "relapse_lattice.png"],
    "why_the_combination_lasts": ["burden.png", "progression_free.png",
                                  "t_cells_core_margin.png", "durable_fraction.png"],
}


def _load(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"examples_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_jit
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_quick_and_draws_its_figures(name, tmp_path, capsys):
    out = tmp_path / name
    figures = _load(name).main(["--quick", "--replicates", "2", "--workers", "2",
                                "-o", str(out)])
    assert sorted(p.name for p in figures) == sorted(EXAMPLES[name])
    for path in figures:
        assert path.parent == out
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), path
        assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    printed = capsys.readouterr().out
    for path in figures:
        assert str(path) in printed               # the script says where its figures are
    assert (out / "study" / "arms.csv").exists()  # the paired study behind the figures


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_reject_bad_options(name, tmp_path, capsys):
    module = _load(name)
    with pytest.raises(SystemExit) as exc:
        module.main(["--replicates", "0", "-o", str(tmp_path)])
    assert exc.value.code == 2
    assert "--replicates" in capsys.readouterr().err
    # a misspelt scenario key: one line naming it, exit status 2, no runs started
    with pytest.raises(SystemExit) as exc:
        module.main(["--quick", "--override", "tumor.resistance_fitnes_cost=0",
                     "-o", str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "resistance_fitness_cost" in err
    assert not (tmp_path / "bad" / "study" / "runs").exists()
