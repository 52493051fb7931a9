"""Time the day accounting and one readiness tick over a year of closed days (local lake).

A lake of `--days` closed days (both topics, `--files` files each) since ADRECON_START_DATE,
all but the 2 newest recorded as reconciled in a temporary Dagster instance: the accounting
(`unreconciled_closed_days`, without and with the sensor's watermark) and a whole tick of
`lake_readiness_sensor` must find exactly the 2 days and stay in milliseconds, since they run
every ADRECON_SENSOR_INTERVAL_SECONDS.

    .venv/bin/python -m benchmarks.day_accounting_tick [--days 365] [--files 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.measure import per_call_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(args.days, 0, -1)]
    # Read at import by the partitions: set before adrecon_assets is imported.
    os.environ["ADRECON_START_DATE"] = days[0].isoformat()
    import dagster as dg

    from adrecon_assets.day_accounting import account_days
    from adrecon_assets.lake import Lake
    from adrecon_assets.rules import Topic
    from adrecon_assets.sensors.readiness import evaluate_readiness

    root = Path(tempfile.mkdtemp(prefix="adrecon-accounting-"))
    for day in days:
        for topic in Topic:
            folder = root / topic.value / f"date_partition={day}"
            folder.mkdir(parents=True)
            for index in range(args.files):
                (folder / f"part-{index}.parquet").write_bytes(b"PAR1")
            (folder / "_SUCCESS").touch()
    with dg.instance_for_test() as instance:
        for day in days[:-2]:
            instance.report_runless_asset_event(
                dg.AssetMaterialization("reconciled_statistics", partition=day.isoformat())
            )
        lake, now = Lake(root), datetime.now(UTC)
        account = account_days(instance, lake, now)
        assert [entry.day for entry in account.unreconciled_closed] == days[-2:]
        cold = per_call_ms(lambda: account_days(instance, lake, now), 10)
        through = account.reconciled_through
        warm = per_call_ms(lambda: account_days(instance, lake, now, through), 10)
        context = dg.build_sensor_context(instance=instance)
        tick = per_call_ms(lambda: evaluate_readiness(context, lake, now), 5)
    print(
        f"{args.days} closed days x {args.files} files, 2 unreconciled: accounting "
        f"{cold:.1f} ms (no cursor), {warm:.1f} ms (watermark {through}); readiness tick "
        f"{tick:.1f} ms"
    )


if __name__ == "__main__":
    main()
