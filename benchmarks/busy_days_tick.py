"""Time what counting requested backfills adds to a sensor tick (`sensors/busy_days.py`).

A temporary Dagster instance (SQLite, as `dagster dev`) holds `--backfills` finished asset
backfills of a year of every daily asset (the largest bodies a backfill stores), then one more
that is requested, with one canceled run of its first day: `backfill_days` reads the requested
backfills (by status) and that one's runs, and must find its other days. For comparison, the
time to read the newest 50 backfills without a status filter (every stored body deserialized).

    .venv/bin/python -m benchmarks.busy_days_tick [--backfills 50]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from benchmarks.measure import per_call_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backfills", type=int, default=50)
    args = parser.parse_args()
    import dagster as dg

    from adrecon_assets.definitions import defs
    from adrecon_assets.sensors.busy_days import backfill_days, busy_days
    from adrecon_assets.sensors.instance_records import live_run_days
    from adrecon_assets_tests.backfills import add_backfill
    from adrecon_assets_tests.instance_runs import add_run

    today = datetime.now(UTC).date()
    year = [today - timedelta(days=n) for n in range(365, 0, -1)]
    graph = defs.resolve_asset_graph()
    assets = [
        key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_partitioned
    ]
    every_asset = {name: (year[0], year[-1]) for name in assets}
    with dg.instance_for_test() as instance:
        for index in range(args.backfills):
            add_backfill(instance, f"done{index}", "COMPLETED_SUCCESS", asset_days=every_asset)
        now = datetime.now(UTC)
        idle = per_call_ms(lambda: backfill_days(instance, year, now), 20)
        unfiltered = per_call_ms(lambda: instance.get_backfills(limit=50), 5)
        add_backfill(instance, "open", "REQUESTED", asset_days=every_asset)
        add_run(
            instance,
            job_name="reconcile_days",
            tags={"dagster/backfill": "open", "dagster/partition": year[0].isoformat()},
            status=dg.DagsterRunStatus.CANCELED,
        )
        assert backfill_days(instance, year, now) == set(year[1:])
        held = per_call_ms(lambda: backfill_days(instance, year, now), 20)
        live = per_call_ms(lambda: live_run_days(instance, year), 20)
        both = per_call_ms(lambda: busy_days(instance, year, now), 20)
    print(
        f"{args.backfills} finished asset backfills of {len(assets)} assets x 365 days: "
        f"backfill_days {idle:.1f} ms with none requested, {held:.1f} ms with one requested "
        f"(and its run); live_run_days {live:.1f} ms; busy_days {both:.1f} ms; reading the "
        f"newest 50 backfills unfiltered {unfiltered:.1f} ms"
    )


if __name__ == "__main__":
    main()
