"""In-run alerts: hooks that send a step's failed checks and the run's failure as they happen.

So `dagster asset materialize` alerts even where no daemon runs the alert sensors. Each hook
tags the run with what it alerted (before sending, so a sensor tick racing it cannot repeat it);
the sensors skip tagged alerts and wait for runs to finish, so each failure is alerted once.
"""

import dagster as dg

from adrecon_assets.alerts.resource import (
    Alert,
    AlertKind,
    AlertResource,
    alerted_checks,
    check_alert,
    check_identity,
)
from adrecon_assets.run_tags import ALERTED_CHECKS_TAG, ALERTED_RUN_FAILURE_TAG, PARTITION_TAG

ALERT_RESOURCE_KEYS = {"alerts"}


def _run_tags(context: dg.HookContext) -> dict[str, str]:
    run = context.instance.get_run_by_id(context.run_id)
    return dict(run.tags) if run else {}


def alert_failed_checks_of_step(context: dg.HookContext) -> int:
    """Alert the step's failed check evaluations not alerted yet; returns how many."""
    tags = _run_tags(context)
    done = alerted_checks(tags)
    failed: list[dg.AssetCheckEvaluation] = []
    for entry in context.instance.all_logs(
        context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ):
        event = entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if (
            entry.step_key == context.step_key
            and isinstance(evaluation, dg.AssetCheckEvaluation)
            and not evaluation.passed
            and check_identity(evaluation.asset_key, evaluation.check_name) not in done
        ):
            failed.append(evaluation)
    if not failed:
        return 0
    identities = {check_identity(e.asset_key, e.check_name) for e in failed}
    context.instance.add_run_tags(
        context.run_id, {ALERTED_CHECKS_TAG: ",".join(sorted(done | identities))}
    )
    alerts: AlertResource = context.resources.alerts
    for evaluation in failed:
        alerts.send(check_alert(evaluation, context.run_id, tags.get(PARTITION_TAG)))
    return len(failed)


@dg.success_hook(name="alert_failed_checks", required_resource_keys=ALERT_RESOURCE_KEYS)
def alert_failed_checks(context: dg.HookContext) -> None:
    alert_failed_checks_of_step(context)


@dg.failure_hook(name="alert_step_failure", required_resource_keys=ALERT_RESOURCE_KEYS)
def alert_step_failure(context: dg.HookContext) -> None:
    """The step's failed checks (a blocking one may be why it failed), then the run's failure,
    once per run even if several steps fail."""
    alert_failed_checks_of_step(context)
    tags = _run_tags(context)
    if ALERTED_RUN_FAILURE_TAG in tags:
        return
    context.instance.add_run_tags(context.run_id, {ALERTED_RUN_FAILURE_TAG: context.step_key})
    error = context.op_exception
    context.resources.alerts.send(
        Alert(
            kind=AlertKind.RUN_FAILURE,
            asset=context.step_key,
            check=None,
            partition=tags.get(PARTITION_TAG),
            severity="ERROR",
            run_id=context.run_id,
            message=f"{context.step_key}: {error}" if error else f"{context.step_key} failed",
        )
    )


ALERT_HOOKS = {alert_failed_checks, alert_step_failure}


def with_alert_hooks(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets as deployed: each step alerts its own failures (tests may use them bare)."""
    return [asset.with_hooks(ALERT_HOOKS) for asset in assets]
