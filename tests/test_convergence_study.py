"""The dt convergence study (``python -m simulator.study.convergence``) end to end on a tiny
lattice: two step lengths, two replicates, one arm; the written table and the choice of step."""
from conftest import needs_jit
from simulator.study import convergence


@needs_jit
def test_tiny_study_writes_the_table_and_the_choice(tmp_path):
    doc = tmp_path / "convergence.md"
    assert convergence.main([
        "--replicates", "2", "--dt", "6,3", "--groups", "melanoma", "--arms", "untreated",
        "--set", "simulation.dimensions=[40,40]", "--set", "simulation.duration_days=70",
        "--set", "initial.tumor_radius_sites=4", "-o", str(tmp_path / "study"),
        "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "## melanoma: untreated" in text and "| 6 h vs 3 h |" in text
    assert "| tumor_cells_day_60 |" in text and "| box_limited |" in text
    assert "## Which step" in text


def test_recommendation_counts_intervals_against_chance():
    def diff(coarse, fine, low, high):
        return convergence.Difference("a", "e", coarse, fine, 1.0, 1.0, (low + high) / 2,
                                      low, high, 20)
    # 6 vs 3 h: 1 of 20 intervals excludes zero (chance level); 3 vs 1.5 h: 10 of 20 do
    results = {"g": [diff(6, 3, 0.1 if i == 0 else -1, 1) for i in range(20)]
               + [diff(3, 1.5, 0.1 if i < 10 else -1, 1) for i in range(20)]}
    text = convergence.recommendation(results, (6.0, 3.0, 1.5))
    assert "| 3 h vs 1.5 h | 20 | 10 |" in text
    assert "| 6 h vs 3 h | 20 | 1 |" in text
    assert "No step coarser than 1.5 h" in text
