"""`adrecon-simulate`: write a labelled demo lake and the online layer's statistics.

    adrecon-simulate --lake data/lake --serving-db data/serving.duckdb \\
        --start 2026-01-01 --days 14 --emissions-per-day 200000 --seed 7 [--ctr-scale 6.4]
        [--extend]

`--serving-url postgresql://user@host/db` instead of `--serving-db`: the online layer writes
its rows through the product's online writer into that PostgreSQL serving store (a password
may come from PGPASSWORD rather than the command line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from tqdm import tqdm

from adrecon_simulate.config import SimulationConfig
from adrecon_simulate.extend import extend
from adrecon_simulate.runner import simulate

# Below this many emission rows in total a run takes a second or two: no bar needed.
PROGRESS_MIN_ROWS = 1_000_000


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _count(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _scale(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="adrecon-simulate",
        description=(
            "Write a contract lake of simulated ad emissions and clicks (with injected invalid "
            "traffic), ground-truth labels outside the lake, and the online layer's "
            "best-effort statistics into the serving store (a DuckDB file or PostgreSQL)."
        ),
    )
    result.add_argument("--lake", type=Path, required=True, help="lake root to write")
    online = result.add_mutually_exclusive_group(required=True)
    online.add_argument(
        "--serving-db", type=Path, default=None, help="DuckDB file for source='online' rows"
    )
    online.add_argument(
        "--serving-url",
        default=None,
        help="PostgreSQL serving store (postgresql://...) for source='online' rows",
    )
    result.add_argument("--start", type=_day, required=True, help="first day, YYYY-MM-DD")
    result.add_argument("--days", type=_count, required=True, help="number of days")
    result.add_argument(
        "--emissions-per-day", type=_count, required=True, help="emission rows (ads shown) a day"
    )
    result.add_argument(
        "--seed", type=_count, required=True, help="random seed (same seed, same lake)"
    )
    result.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="ground-truth folder (default: ground_truth beside the lake)",
    )
    result.add_argument(
        "--files-per-day", type=_count, default=4, help="on-time Parquet files a day"
    )
    result.add_argument(
        "--ctr-scale",
        type=_scale,
        default=1.0,
        help=(
            "multiply every placement's click-through rate (default 1: 0.3-2 %%); e.g. 6.4 for "
            "~0.8M clicks a day at 20M emission rows. Fault shares of the clicks stay the same"
        ),
    )
    result.add_argument(
        "--extend",
        action="store_true",
        help=(
            "write only the days the lake lacks (same seed: the same days as one run from the "
            "lake's first day); existing days, their labels and online rows are left alone"
        ),
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        config = SimulationConfig(
            lake=arguments.lake,
            serving_db=arguments.serving_db,
            serving_url=arguments.serving_url,
            start=arguments.start,
            days=arguments.days,
            emissions_per_day=arguments.emissions_per_day,
            seed=arguments.seed,
            labels=arguments.labels,
            files_per_day=arguments.files_per_day,
            ctr_scale=arguments.ctr_scale,
        )
    except ValueError as error:
        parser().error(str(error))

    def progress(days: list[date]) -> Iterable[date]:
        quiet = len(days) * config.emissions_per_day < PROGRESS_MIN_ROWS
        return tqdm(days, desc="simulating", unit="day", disable=quiet, file=sys.stderr)

    if arguments.extend:
        extended = extend(config, progress)
        if extended is None:
            print(f"lake {config.lake} already has {config.start}..{config.days_list[-1]}")
            return 0
        print(extended.line())
        return 0
    print(simulate(config, progress(config.days_list)).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
