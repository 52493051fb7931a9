"""In-run pages: hooks that page a step's failed ERROR checks and the run's failure at once,
when no daemon watches (`dagster asset materialize` on a machine without one).

Under a daemon `alert_sensor` is the one sender (it keeps the open conditions, sends the
notifications and the resolutions), so the hooks stay silent. Without one they page, and tag
the run with the keys they sent (before sending: a sensor started later adopts them as open
conditions instead of sending them again, and resolves them when they clear).
"""

import time
from collections.abc import Mapping

import dagster as dg

from adrecon_assets.alerts.conditions import check_alert, run_failure_alert
from adrecon_assets.alerts.model import Alert, Priority
from adrecon_assets.alerts.resource import AlertResource
from adrecon_assets.run_tags import ALERTED_KEYS_TAG
from adrecon_assets.sensors.instance_records import days_of_tags, run_partition

ALERT_RESOURCE_KEYS = {"alerts"}
# The daemon that runs the sensors (Dagster's daemon type name) counts as watching while its
# heartbeat is this recent; it beats every few seconds.
SENSOR_DAEMON = "SENSOR"
DAEMON_HEARTBEAT_FRESH_SECONDS = 120.0


def alerted_keys(run_tags: Mapping[str, str]) -> set[str]:
    """The dedup keys a run's hooks already sent (see ALERTED_KEYS_TAG)."""
    value = run_tags.get(ALERTED_KEYS_TAG, "")
    return set(value.split(",")) if value else set()


def daemon_watching(instance: dg.DagsterInstance) -> bool:
    heartbeat = instance.get_daemon_heartbeats().get(SENSOR_DAEMON)
    return heartbeat is not None and time.time() - heartbeat.timestamp <= (
        DAEMON_HEARTBEAT_FRESH_SECONDS
    )


def _run_tags(context: dg.HookContext) -> dict[str, str]:
    run = context.instance.get_run_by_id(context.run_id)
    return dict(run.tags) if run else {}


def step_check_pages(context: dg.HookContext, tags: Mapping[str, str]) -> list[Alert]:
    """The pages for the step's failed ERROR checks (WARN ones wait for the digest)."""
    pages = []
    for entry in context.instance.all_logs(
        context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ):
        event = entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if (
            entry.step_key == context.step_key
            and isinstance(evaluation, dg.AssetCheckEvaluation)
            and not evaluation.passed
        ):
            alert = check_alert(evaluation, context.run_id, run_partition(dict(tags)))
            if alert.priority is Priority.PAGE:
                pages.append(alert)
    return pages


def send_once(context: dg.HookContext, tags: Mapping[str, str], alerts: list[Alert]) -> int:
    """Send the alerts this run has not sent yet; how many."""
    done = alerted_keys(tags)
    new = {alert.dedup_key: alert for alert in alerts if alert.dedup_key not in done}
    if not new:
        return 0
    context.instance.add_run_tags(
        context.run_id, {ALERTED_KEYS_TAG: ",".join(sorted(done | set(new)))}
    )
    resource: AlertResource = context.resources.alerts
    for alert in new.values():
        resource.send(alert)
    return len(new)


@dg.success_hook(name="alert_failed_checks", required_resource_keys=ALERT_RESOURCE_KEYS)
def alert_failed_checks(context: dg.HookContext) -> None:
    if daemon_watching(context.instance):
        return
    tags = _run_tags(context)
    send_once(context, tags, step_check_pages(context, tags))


@dg.failure_hook(name="alert_step_failure", required_resource_keys=ALERT_RESOURCE_KEYS)
def alert_step_failure(context: dg.HookContext) -> None:
    """The step's failed ERROR checks, then a run failure for each day of the run that no such
    check explains (the check's page already says why the day is not reconciled)."""
    if daemon_watching(context.instance):
        return
    tags = _run_tags(context)
    pages = step_check_pages(context, tags)
    explained = {page.partition for page in pages}
    error = context.op_exception
    message = f"{context.step_key}: {error}" if error else f"{context.step_key} failed"
    pages += [
        run_failure_alert(day, context.run_id, context.step_key, message)
        for day in sorted(days_of_tags(tags))
        if day.isoformat() not in explained
    ]
    send_once(context, tags, pages)


ALERT_HOOKS = {alert_failed_checks, alert_step_failure}


def with_alert_hooks(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets as deployed: each step pages its own failures (tests may use them bare)."""
    return [asset.with_hooks(ALERT_HOOKS) for asset in assets]
