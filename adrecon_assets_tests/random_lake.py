"""A small seeded random lake that hits the contract's edges, for the integration tests.

Independent of the simulator on purpose: it favours edge cases (exact 1 s gaps, floods around
600 s, duplicate ties, CIDR boundaries, cross-midnight clicks, keys repeated on the next day,
a day without an emissions folder) over realistic rates.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from adrecon_assets.rules import Topic
from adrecon_assets_tests.lakes import write_denylist, write_topic

DENYLIST = ["192.0.2.0/24", "203.0.113.5/32", "10.0.0.0/8", "10.1.0.0/16"]
IPS = [
    "192.0.1.255",
    "192.0.2.0",
    "192.0.2.255",
    "192.0.3.0",
    "203.0.113.4",
    "203.0.113.5",
    "10.1.2.3",
    "11.0.0.0",
    "9.255.255.255",
    "8.8.8.8",
    "100.64.1.1",
    "172.16.0.1",
]
# Gaps from emission to click in seconds: the 1 s edge both sides, negative, and ordinary ones.
EDGE_GAPS = [-3.0, 0.5, 0.999999, 1.0, 1.000001, 30.0]
OFFERS = [f"o{n}" for n in range(6)]
PLACEMENTS = [f"p{n}" for n in range(4)]
USERS = [f"u{n}" for n in range(8)]


def _random_moment(rng: random.Random, day: date) -> datetime:
    start = datetime(day.year, day.month, day.day)
    return start + timedelta(seconds=rng.randrange(86_400), microseconds=rng.choice([0, 0, 7]))


class RandomLake:
    """Rows are collected per (topic, day) and written as several files per folder."""

    def __init__(self, root: Path, first: date, days: int, seed: int) -> None:
        self.root, self.first, self.days = root, first, days
        self.rng = random.Random(seed)
        self.rows: dict[tuple[Topic, date], list[dict[str, Any]]] = {}
        self.clicks_made = 0

    def _add(self, topic: Topic, moment: datetime, row: dict[str, Any]) -> None:
        day = moment.date()
        if self.first <= day < self.first + timedelta(days=self.days):
            self.rows.setdefault((topic, day), []).append(row)

    def _emission(self, key: tuple[str, str], placement: str, cost: int, moment: datetime) -> None:
        row = {
            "emission_id": key[0],
            "offer_id": key[1],
            "placement": placement,
            "click_cost_micros": cost,
            "emitted_at": moment.replace(tzinfo=UTC),
        }
        self._add(Topic.EMISSIONS, moment, row)

    def _click(self, key: tuple[str, str], moment: datetime, user: str, ip: str) -> str:
        self.clicks_made += 1
        click_id = f"c{self.clicks_made:05d}"
        self._click_row(click_id, key, moment, user, ip)
        return click_id

    def _click_row(
        self, click_id: str, key: tuple[str, str], moment: datetime, user: str, ip: str
    ) -> None:
        row = {
            "click_id": click_id,
            "emission_id": key[0],
            "offer_id": key[1],
            "clicked_at": moment.replace(tzinfo=UTC),
            "user_id": user,
            "ip": ip,
        }
        self._add(Topic.CLICKS, moment, row)

    def _emission_duplicates(
        self, key: tuple[str, str], placement: str, cost: int, moment: datetime
    ) -> None:
        """Ties on emitted_at (cost, then placement decide) and a later copy, maybe next day."""
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            self._emission(key, rng.choice(PLACEMENTS), cost + rng.choice([-1, 1]), moment)
        elif kind == 1:
            self._emission(key, rng.choice(PLACEMENTS), cost, moment)
        elif kind == 2:
            later = moment + timedelta(hours=rng.choice([1, 20, 30]))
            self._emission(key, rng.choice(PLACEMENTS), rng.randrange(1, 1000), later)
        else:
            self._emission(key, placement, cost, moment)

    def _clicks_on(self, key: tuple[str, str], emitted: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            gap = timedelta(seconds=rng.choice(EDGE_GAPS))
        else:
            gap = timedelta(seconds=rng.randrange(2, 40_000))  # some cross midnight
        user, ip = rng.choice(USERS), rng.choice(IPS)
        moment = emitted + gap
        click_id = self._click(key, moment, user, ip)
        if rng.random() < 0.15:  # message duplicates: exact, later, or tied up to a column
            choice = rng.randrange(3)
            if choice == 0:
                self._click_row(click_id, key, moment, user, ip)
            elif choice == 1:
                later = moment + timedelta(seconds=5)
                same_day_later = later if later.date() == moment.date() else moment
                self._click_row(click_id, key, same_day_later, user, ip)
            else:
                self._click_row(click_id, key, moment, rng.choice(USERS), rng.choice(IPS))
        if rng.random() < 0.1:  # a burst: 2-5 more clicks of the same user within ~700 s
            for offset in sorted(rng.uniform(0, 700) for _ in range(rng.randrange(2, 6))):
                step = timedelta(seconds=round(offset)) if rng.random() < 0.5 else timedelta(0)
                self._click(key, moment + step, user, rng.choice(IPS))

    def build(self, emissions_per_day: int = 120) -> None:
        rng = self.rng
        for index in range(self.days):
            day = self.first + timedelta(days=index)
            if index == 2:
                continue  # a day without an emissions folder (clicks of it may still join D-1)
            for number in range(emissions_per_day):
                emission_id = f"e{index}-{number}"
                moment = _random_moment(rng, day)
                if rng.random() < 0.1:  # late evening: clicks after midnight
                    moment = moment.replace(hour=23, minute=rng.randrange(50, 60))
                for offer in rng.sample(OFFERS, rng.randrange(1, 4)):
                    key = (emission_id, offer)
                    placement, cost = rng.choice(PLACEMENTS), rng.randrange(0, 5_000_000)
                    self._emission(key, placement, cost, moment)
                    if rng.random() < 0.08:
                        self._emission_duplicates(key, placement, cost, moment)
                    if rng.random() < 0.35:
                        self._clicks_on(key, moment)
                    if rng.random() < 0.02:  # orphan click
                        self._click(("missing", offer), moment, rng.choice(USERS), "8.8.8.8")
        self._write()

    def _write(self) -> None:
        for (topic, day), rows in sorted(self.rows.items()):
            self.rng.shuffle(rows)
            parts = min(3, len(rows))
            for part in range(parts):
                write_topic(self.root, topic, day, rows[part::parts], name=f"part-{part}")
        write_denylist(self.root, DENYLIST)


def build_random_lake(root: Path, first: date, days: int, seed: int) -> RandomLake:
    lake = RandomLake(root, first, days, seed)
    lake.build()
    return lake
