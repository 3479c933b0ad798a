"""Studies over many runs: the runner, paired regimen comparison, study outputs, sweeps and
the library's claims check. Each run writes its own file; studies only read them back."""
from simulator.study.comparison import compare, load_arms, run_replicate
from simulator.study.layout import Arm, is_complete, run_path
from simulator.study.workers import threads_per_worker

__all__ = ["Arm", "compare", "is_complete", "load_arms", "run_path", "run_replicate",
           "threads_per_worker"]
