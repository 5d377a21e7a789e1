"""What one round of the stats flood (7) measured, and the numbers the report derives from it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..harness.metrics import sample_sum
from ..harness.stats import percentile
from ..harness.traffic import OK, PacedClient, Sample, in_app, within

REFUSAL_SCOPES = ("process", "hosts", "client")


@dataclass(frozen=True)
class Config:
    """A deployment compared: the environment its gunicorn starts with."""

    key: str
    name: str
    env: dict[str, str] = field(hash=False)
    main: bool  # False: only a round that sizes RUNSTATS_STATS_SCANS_TOTAL


@dataclass(frozen=True)
class Deployment:
    """What the started server runs with, as its log and the app's settings say."""

    worker_class: str
    per_process: int
    total: int
    budget: float  # seconds: the stats wait budget (RUNSTATS_STATS_WAIT_MS)


@dataclass(frozen=True)
class Pace:
    """How the clients beside the flood go: seconds between requests, and their timeout."""

    write_every: float  # per writer
    list_every: float
    health_every: float
    timeout: float
    callers: int  # reader tokens the flood is spread over
    warmup: float  # seconds of paced traffic before the baseline: connections, caches


@dataclass(frozen=True)
class Answer:
    """One stats answer to a flood client."""

    status: int  # 0: no answer (the connection broke or timed out)
    cache: str | None
    retry_after: str | None
    seconds: float


@dataclass(frozen=True)
class Mark:
    """A moment of a round, and the CPU seconds gunicorn, PostgreSQL and the harness had
    used by then."""

    at: float  # time.perf_counter()
    gunicorn: float
    postgres: float | None  # None: PostgreSQL is not on this machine
    harness: float


@dataclass(frozen=True)
class Window:
    """The paced clients' requests sent between two marks, and the CPU used meanwhile."""

    writes: list[Sample]
    lists: list[Sample]
    health: list[Sample]
    writes_in_app: list[float]  # seconds, by the app's access log
    seconds: float
    gunicorn_cores: float  # CPU seconds per second
    postgres_cores: float | None
    harness_cores: float

    @staticmethod
    def of(
        writers: Sequence[PacedClient],
        reader: PacedClient,
        health: PacedClient,
        start: Mark,
        end: Mark,
        app_seconds: Mapping[str, float],
    ) -> Window:
        seconds = end.at - start.at
        writes = within(writers, start.at, end.at)
        postgres = None
        if start.postgres is not None and end.postgres is not None:
            postgres = (end.postgres - start.postgres) / seconds
        return Window(
            writes=writes,
            lists=within([reader], start.at, end.at),
            health=within([health], start.at, end.at),
            writes_in_app=in_app(writes, app_seconds),
            seconds=seconds,
            gunicorn_cores=(end.gunicorn - start.gunicorn) / seconds,
            postgres_cores=postgres,
            harness_cores=(end.harness - start.harness) / seconds,
        )

    def p(self, kind: str, fraction: float) -> float:
        """A percentile of the latencies of `kind`: writes, lists, health or writes_in_app."""
        values = getattr(self, kind)
        seconds = values if kind == "writes_in_app" else [s.seconds for s in values]
        return percentile(seconds, fraction)

    def failures(self) -> Counter[str]:
        """Writes, lists and health checks that failed or timed out, by outcome."""
        return _bad([*self.writes, *self.lists, *self.health])


def _bad(samples: Iterable[Sample]) -> Counter[str]:
    return Counter(s.outcome for s in samples if s.outcome != OK)


@dataclass(frozen=True)
class AppCounts:
    """What the app's own metrics (`/metrics`) counted during a flood."""

    scans: int  # aggregates run, completed or not
    scan_seconds: float  # their total duration
    refused: dict[str, int]  # scans not admitted, by the bound that was full

    @staticmethod
    def between(before: Mapping[str, float], after: Mapping[str, float]) -> AppCounts:
        def delta(name: str, **labels: str) -> int:
            return round(sample_sum(after, name, **labels) - sample_sum(before, name, **labels))

        aggregates = "runstats_aggregate_query_seconds"
        return AppCounts(
            scans=delta(f"{aggregates}_count"),
            scan_seconds=sample_sum(after, f"{aggregates}_sum")
            - sample_sum(before, f"{aggregates}_sum"),
            refused={
                scope: delta("runstats_stats_scans_refused_total", scope=scope)
                for scope in REFUSAL_SCOPES
            },
        )


@dataclass(frozen=True)
class FloodRound:
    config: Config
    deployment: Deployment
    size: int
    before: Window
    during: Window
    answers: list[Answer]
    scans: Counter[int]  # pg_stat_activity samples during the flood, by scans running
    app: AppCounts

    @property
    def write_ratio(self) -> float:
        return self.during.p("writes", 0.99) / self.before.p("writes", 0.99)

    @property
    def failures(self) -> Counter[str]:
        return self.before.failures() + self.during.failures()

    @property
    def requests(self) -> int:
        """Writes, lists and health checks sent in both windows."""
        return sum(
            len(w.writes) + len(w.lists) + len(w.health) for w in (self.before, self.during)
        )

    @property
    def computed(self) -> int:
        """Stats answers computed by a scan for the request (200, `X-Cache: miss`)."""
        return sum(a.status == 200 and a.cache == "miss" for a in self.answers)

    @property
    def refused(self) -> list[float]:
        """Seconds each 503 took."""
        return [a.seconds for a in self.answers if a.status == 503]

    @property
    def answers_per_second(self) -> float:
        return len(self.answers) / self.during.seconds

    @property
    def gunicorn_cpu_per_answer(self) -> float | None:
        """gunicorn's CPU seconds per stats answer: what it used during the flood beyond
        its rate before, spread over the answers (the paced clients' share assumed equal);
        None when it used less (its threads all waiting on scans)."""
        extra = self.during.gunicorn_cores - self.before.gunicorn_cores
        return extra * self.during.seconds / len(self.answers) if extra > 0 else None

    @property
    def failed_scans(self) -> int:
        """Scans that ran but gave no result (the scan timeout, an error)."""
        return self.app.scans - self.computed

    @property
    def scans_per_second(self) -> float:
        return self.computed / self.during.seconds

    @property
    def late(self) -> int:
        """Stats answers neither a 200 nor a 503, or past the wait budget."""
        return sum(
            a.status not in (200, 503) or a.seconds > self.deployment.budget for a in self.answers
        )
