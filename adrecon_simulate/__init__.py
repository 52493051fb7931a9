"""`adrecon-simulate`: a labelled contract lake, plus the online layer's best-effort statistics.

The simulator is the project's demo data and its ground truth: every click row it writes carries
an injected fault kind (kept outside the lake), so tests can measure the pipeline's precision and
recall per fraud reason.
"""

from adrecon_simulate.config import FaultRates, SimulationConfig
from adrecon_simulate.runner import DayTraffic, SimulationSummary, generate_day, simulate

__all__ = [
    "DayTraffic",
    "FaultRates",
    "SimulationConfig",
    "SimulationSummary",
    "generate_day",
    "simulate",
]
