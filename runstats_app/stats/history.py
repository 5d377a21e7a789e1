"""The time range of a history request: UTC hours or days of `created_at`.

A range is widened to whole buckets (start rounded down, end up), so that
equivalent ranges share one cache entry and no bucket is counted in part;
every bucket of the range is answered, zeros included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import BadRequest

BUCKETS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN: dict[str, timedelta] = {"hour": timedelta(hours=48), "day": timedelta(days=30)}
MAX_BUCKETS = 400


@dataclass(frozen=True)
class HistoryRange:
    bucket: str
    start: datetime
    end: datetime

    @property
    def starts(self) -> list[datetime]:
        step = BUCKETS[self.bucket]
        count = (self.end - self.start) // step
        return [self.start + step * index for index in range(count)]


def floor_to_bucket(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _range_error(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", {"query": {field: [message]}})


def resolve_range(
    bucket: str, start: datetime | None, end: datetime | None, now: datetime
) -> HistoryRange:
    """The whole-bucket range a request asks for; defaults end with the bucket holding `now`.

    400 (naming the limit) for a range of no bucket or more than MAX_BUCKETS.
    """
    step = BUCKETS[bucket]
    try:
        if end is None:
            aligned_end = floor_to_bucket(now, bucket) + step
        else:
            aligned_end = floor_to_bucket(end, bucket)
            if aligned_end < end:
                aligned_end += step
    except OverflowError:
        raise _range_error("end_time", "Out of the supported date range.") from None
    try:
        if start is None:
            aligned_start = aligned_end - DEFAULT_SPAN[bucket]
        else:
            aligned_start = floor_to_bucket(start, bucket)
    except OverflowError:
        raise _range_error("start_time", "Out of the supported date range.") from None
    if aligned_start >= aligned_end:
        raise _range_error("start_time", "start_time must be before end_time.")
    count = (aligned_end - aligned_start) // step
    if count > MAX_BUCKETS:
        raise _range_error(
            "end_time" if start is None else "start_time",
            f"The range spans {count} {bucket} buckets; the limit is {MAX_BUCKETS} "
            "(bucket limit).",
        )
    return HistoryRange(bucket, aligned_start, aligned_end)
