"""How long a terminal's SD card lasts under edge's writes: the budget's arithmetic
(docs/loop.md, "Writes on flash"), printed by scripts/bench_writes.py.

years = card size x P/E cycles / write amplification / bytes written a year. The card
is a consumer one at the low end of what a terminal ships with; its NAND (TLC) is rated
for about 1,000 program/erase cycles; small scattered writes with fsyncs (SQLite's WAL,
a status file's rename-over) make the card's controller rewrite far more than it is
given: 20 is a pessimistic factor for cheap cards (good ones with a page-mapped FTL are
near 2-4). ext4's journal adds its own blocks per commit (a descriptor, the metadata
blocks and a commit block, ~3 x 4 KiB), counted here per fsync.
"""
from __future__ import annotations

from dataclasses import dataclass

HOURS_A_YEAR = 24 * 365.25
JOURNAL_BYTES_PER_COMMIT = 3 * 4096   # ext4/jbd2 blocks per fsync that commits metadata


@dataclass(frozen=True)
class Card:
    size_bytes: float = 32e9            # a 32 GB card
    pe_cycles: float = 1000.0           # consumer TLC NAND
    write_amplification: float = 20.0   # small scattered writes on a cheap card's controller

    @property
    def host_bytes(self) -> float:
        """What the card takes from the host before it is worn out."""
        return self.size_bytes * self.pe_cycles / self.write_amplification


CARD = Card()
TARGET_YEARS = 10.0   # a terminal on a wall: its card should outlast the hardware's service life


def host_bytes_per_hour(write_bytes_per_hour: float, fsyncs_per_hour: float = 0.0) -> float:
    """The process's write_bytes plus the file system journal's blocks for its fsyncs."""
    return write_bytes_per_hour + fsyncs_per_hour * JOURNAL_BYTES_PER_COMMIT


def endurance_years(bytes_per_hour: float, card: Card = CARD) -> float:
    return float("inf") if bytes_per_hour <= 0 else card.host_bytes / (bytes_per_hour * HOURS_A_YEAR)


def budget_bytes_per_hour(years: float = TARGET_YEARS, card: Card = CARD) -> float:
    """The write rate the card bears for `years` (1.6 TB / 10 years: ~18 MB/h)."""
    return card.host_bytes / (years * HOURS_A_YEAR)
