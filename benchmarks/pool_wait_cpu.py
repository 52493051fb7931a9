"""Measure the CPU a run spends while one of its steps waits for a concurrency pool's slot.

Dagster 1.13's step loop (`execute_plan_iterator`) sleeps `ActiveExecution.sleep_interval()`
between claim attempts, but the pending-claim part of that interval is
`min([0, *timeouts])`, never more than 0: a blocked step's run polls without sleeping. This
script holds the only slot of a pool for another run, starts a one-op job in that pool on a
temporary SQLite instance (as `dagster dev`), and prints the CPU seconds its process used over
`--seconds` of wall time while the op waited (docs/operating.md, Concurrency).

    .venv/bin/python -m benchmarks.pool_wait_cpu [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

POOL = "pool_wait_cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pool-wait-cpu-"))
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    granularity: op\n")
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    @dg.op(pool=POOL)
    def pooled() -> int:
        return 1

    @dg.job
    def waiting_job() -> None:
        pooled()

    instance = dg.DagsterInstance.get()
    instance.event_log_storage.set_concurrency_slots(POOL, 1)
    # Another run holds the pool's only slot for the whole measurement.
    instance.event_log_storage.claim_concurrency_slot(POOL, "holding-run", "holding-step")
    threading.Thread(
        target=lambda: waiting_job.execute_in_process(instance=instance), daemon=True
    ).start()
    time.sleep(3)  # the job has started and its step is blocked
    cpu_start, wall_start = time.process_time(), time.monotonic()
    time.sleep(args.seconds)
    cpu, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    print(
        f"a step blocked on pool {POOL!r}: its process used {cpu:.1f} CPU s in {wall:.1f} s "
        f"of wall time ({cpu / wall:.0%} of a core); load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    os._exit(0)  # the waiting run never ends by itself


if __name__ == "__main__":
    main()
