"""The serving writes of a ranged step: each audited day queued, then all of them published in
one transaction per store once every day of the step is done (one day's replace each, oldest
first). A day that failed is left out; a failed transaction publishes none of them. A day's
staged warehouse version (`reconciled_statistics`') is swapped in after its serving write.
A queued day holds its rows as that staged Parquet folder, not in memory: the transaction
streams each day from its files, so a long range costs no more memory than one day."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from adrecon_assets.assets.day_context import AnyDayContext, DayContext, Publication
from adrecon_assets.partitions import day_spans
from adrecon_assets.serving.store import DayReplace, ServingStore
from adrecon_assets.warehouse import StagedVersion


class PublicationError(RuntimeError):
    """The one serving transaction of a ranged step failed (retried by the retry policy)."""


def publish_day(
    context: AnyDayContext,
    store: ServingStore,
    replace: DayReplace,
    staged: StagedVersion | None = None,
) -> None:
    """Publish one audited day to the serving store: at once in a one-day run; in a ranged run
    queued, to be published with the step's other audited days in one transaction.

    `staged` is the day's warehouse version of the same rows: it is swapped in only after the
    serving write committed (in a one-day run when the caller's `staged_version` block ends,
    in a ranged run after the step's transaction), so that a publish that fails leaves the
    warehouse and the serving store agreeing on the old day."""
    if isinstance(context, DayContext):
        if staged is not None:
            staged.hold()
        context.publications.append(Publication(store, replace, staged))
        return
    rows = store.replace_days([replace])
    context.log.info(f"published {replace.day} to {replace.table.name}: {rows} audited rows")


def publish_queued(context: dg.AssetExecutionContext, queued: Sequence[Publication]) -> None:
    """Publish the queued writes of the days that succeeded, oldest first, in one transaction
    per store; if it fails, none of them is published and the step fails naming the days."""
    by_store: dict[str, list[Publication]] = {}
    for publication in queued:
        by_store.setdefault(publication.store.location, []).append(publication)
    for publications in by_store.values():
        replaces = [publication.replace for publication in publications]
        days = day_spans({replace.day for replace in replaces})
        tables = ", ".join(sorted({replace.table.name for replace in replaces}))
        try:
            rows = publications[0].store.replace_days(replaces)
        except Exception as error:
            for publication in queued:
                if publication.staged is not None:
                    publication.staged.discard()
            raise PublicationError(
                f"{context.assets_def.node_def.name}: publishing {len(replaces)} audited days to "
                f"{tables} failed, none of them was published ({days}): {error}"
            ) from error
        for publication in publications:
            if publication.staged is not None:
                publication.staged.publish()
        context.log.info(
            f"published {len(replaces)} audited days to {tables} in one transaction "
            f"({rows} rows): {days}"
        )
