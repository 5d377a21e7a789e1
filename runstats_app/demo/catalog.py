"""The demo platform's teams, people, service accounts and pipelines, built from a DemoShape.

Deterministic: the same shape always gives the same names, members and
owners (a fixed internal seed), whatever seed the runs are drawn with.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from .shape import KIND_SHARES, DemoShape, zipf_weights

TEAM_NAMES = (
    "ml-platform", "search", "ads", "data-eng", "research", "recsys", "payments", "fraud",
    "growth", "identity", "maps", "vision", "speech", "nlp", "forecasting", "pricing",
    "logistics", "catalog", "checkout", "risk", "billing", "infra", "security", "analytics",
    "marketing", "support", "mobile", "content", "ranking", "notifications", "inventory",
    "experimentation", "sre", "finance", "trust-safety", "partners",
)  # fmt: skip
FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "quentin", "rupert", "sybil", "trent", "ursula",
    "victor", "walter", "xena", "yusuf", "zoe", "aaron", "beatriz", "chen", "dmitri", "elena",
    "farah", "gustavo", "hana", "igor", "jun", "kofi", "lena", "mateo", "nadia", "omar",
    "priya", "quinn", "rosa", "sanjay", "tomas", "uma", "vikram", "wei", "ximena", "yara",
    "zane",
)  # fmt: skip
LAST_NAMES = (
    "smith", "garcia", "kim", "nguyen", "patel", "mueller", "rossi", "silva", "tanaka",
    "kowalski", "okafor", "haddad", "larsen", "novak", "ibrahim", "costa", "yilmaz", "berg",
    "chopra", "moreau",
)  # fmt: skip
SERVICE_ACCOUNTS = ("svc-airflow", "svc-scheduler", "svc-ci", "svc-backfill", "svc-argo")
MODELS = (
    "resnet50", "bert-base", "llm-7b", "xgb-ranker", "two-tower", "wide-deep", "vit-b16",
    "t5-small", "gbdt", "lstm", "dlrm", "clip", "whisper", "llama-13b", "mobilenet",
    "efficientnet", "gpt2", "roberta", "lightgbm", "prophet",
)  # fmt: skip
SOURCES = (
    "events", "clicks", "orders", "users", "billing", "inventory", "sessions", "payments",
    "logs", "impressions", "queries", "reviews", "shipments", "refunds", "signups", "crm",
    "ledger", "telemetry", "listings", "messages",
)  # fmt: skip
DESTINATIONS = ("warehouse", "bigquery", "s3", "snowflake", "lake", "elastic", "feature-store")
SERVICES = ("api", "gateway", "scorer", "indexer", "worker", "frontend", "model-server")
# Kind -> (words it is named after, whether the name always ends in a number).
KIND_NAMES: dict[str, tuple[Sequence[str], bool]] = {
    "train": (MODELS, True),
    "eval": (MODELS, True),
    "infer": (MODELS, True),
    "etl": (SOURCES, False),
    "backfill": (SOURCES, False),
    "quality": (SOURCES, False),
    "export": (DESTINATIONS, False),
    "deploy": (SERVICES, False),
}
CATALOG_SEED = 13


@dataclass(frozen=True)
class Member:
    """A creator: `team` indexes Catalog.teams (None for a service account)."""

    name: str
    team: int | None
    weight: float


@dataclass(frozen=True)
class Pipeline:
    name: str
    team: int
    kind: str
    weight: float


@dataclass(frozen=True)
class Catalog:
    """People and pipelines in rank order (rank 1 first); weights are shares of the draws."""

    teams: tuple[str, ...]
    people: tuple[Member, ...]
    service_accounts: tuple[Member, ...]
    pipelines: tuple[Pipeline, ...]

    def members(self, team: int) -> list[Member]:
        """The team's people, most active first."""
        return [person for person in self.people if person.team == team]


def numbered(names: Sequence[str], index: int) -> str:
    """The index-th of an endless list: the names, then the names again suffixed -2, -3, ..."""
    name, round_ = names[index % len(names)], index // len(names)
    return f"{name}-{round_ + 1}" if round_ else name


def person_name(index: int) -> str:
    """First names, then first.last, then first.last2, ...: unique for every index."""
    if index < len(FIRST_NAMES):
        return FIRST_NAMES[index]
    rest = index - len(FIRST_NAMES)
    first, rest = FIRST_NAMES[rest % len(FIRST_NAMES)], rest // len(FIRST_NAMES)
    last, round_ = LAST_NAMES[rest % len(LAST_NAMES)], rest // len(LAST_NAMES)
    return f"{first}.{last}{round_ + 1 if round_ else ''}"


def apportion(weights: Sequence[float], targets: Sequence[float]) -> list[int]:
    """Give each weight, in order, to the group furthest below its target share.

    Groups are compared by what they hold relative to their target, so every
    group gets one item before any gets a second, the heaviest item goes to
    the largest target, and the shares end close to the targets.
    """
    heap = [(0.0, -target, group) for group, target in enumerate(targets)]
    heapq.heapify(heap)
    held = [0.0] * len(targets)
    owners = []
    for weight in weights:
        _, negative_target, group = heapq.heappop(heap)
        held[group] += weight
        owners.append(group)
        heapq.heappush(heap, (held[group] / -negative_target, negative_target, group))
    return owners


def _people(shape: DemoShape, team_count: int, rng: random.Random) -> tuple[Member, ...]:
    """One lead per team (rank r leads team r), the rest in teams of varied size."""
    team_sizes = [1 / (team + 1) ** 0.5 for team in range(team_count)]
    weights = zipf_weights(shape.people, shape.skew)
    return tuple(
        Member(
            person_name(rank),
            rank if rank < team_count else rng.choices(range(team_count), team_sizes)[0],
            weight,
        )
        for rank, weight in enumerate(weights)
    )


def _pipeline_names(
    teams: Sequence[str], owners: list[int], kinds: list[str], rng: random.Random
) -> list[str]:
    """`<team>-<kind>-<word>`, numbered where the kind always is or the name repeats."""
    seen: dict[str, int] = {}
    names = []
    for owner, kind in zip(owners, kinds, strict=True):
        words, always_numbered = KIND_NAMES[kind]
        base = f"{teams[owner]}-{kind}-{rng.choice(words)}"
        seen[base] = seen.get(base, 0) + 1
        count = seen[base]
        names.append(f"{base}-{count}" if always_numbered or count > 1 else base)
    return names


@cache
def build_catalog(shape: DemoShape) -> Catalog:
    rng = random.Random(CATALOG_SEED)  # noqa: S311 - demo data, not secrets
    teams = tuple(numbered(TEAM_NAMES, index) for index in range(shape.teams))
    people = _people(shape, len(teams), rng)
    team_shares = [0.0] * len(teams)
    for person in people:
        team_shares[person.team] += person.weight  # type: ignore[index]
    weights = zipf_weights(shape.pipelines, shape.skew)
    owners = apportion(weights, team_shares)
    kind_names = [kind for kind, _ in KIND_SHARES]
    kinds = [kind_names[i] for i in apportion(weights, [share for _, share in KIND_SHARES])]
    names = _pipeline_names(teams, owners, kinds, rng)
    service_weights = zipf_weights(shape.service_accounts, shape.skew)
    return Catalog(
        teams=teams,
        people=people,
        service_accounts=tuple(
            Member(name, None, weight)
            for name, weight in zip(SERVICE_ACCOUNTS, service_weights, strict=False)
        ),
        pipelines=tuple(
            Pipeline(*fields) for fields in zip(names, owners, kinds, weights, strict=True)
        ),
    )
