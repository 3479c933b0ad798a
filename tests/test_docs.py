"""docs/parameters.md is generated from the scenario schema and must be up to date."""
import dataclasses
import typing

from simulator.output import docs
from simulator.scenario import Scenario
from simulator.schema import describe


def test_parameter_table_is_up_to_date():
    """Regenerate with `python -m simulator.output.docs` when this fails."""
    assert docs.DOCS.read_text() == docs.parameters_markdown()


def test_every_key_is_documented_with_a_meaning():
    rows = list(describe(Scenario))
    assert len(rows) > 100
    missing = [key for key, _, _, doc, _ in rows if not doc]
    assert not missing, missing
    text = docs.parameters_markdown()
    for key, *_ in rows:
        assert f"`{key}`" in text


def test_immune_and_tissue_keys_carry_units_and_sources():
    """Every rate, speed, time and concentration of the immune / tissue sections names its
    unit; every one of their keys without a source is a switch, a ratio or a calibration
    knob declared as such."""
    sections = ("vessels", "fields", "hypoxia", "pd_l1", "t_cells", "suppressive")
    for key, _, unit, doc, source in describe(Scenario):
        if not key.startswith(sections):
            continue
        name = key.rsplit(".", 1)[-1]
        if any(part in name for part in ("per_day", "per_min", "per_hour", "_um", "mmhg",
                                         "ng_per_ml", "_hours", "_days")):
            assert unit, key
    hints = typing.get_type_hints(Scenario)
    assert all(dataclasses.is_dataclass(hints[s]) for s in sections)
