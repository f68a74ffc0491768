"""topics.yaml: the validated model of topics, event types, sources, routes, destinations and schedules.

Every topic name any service uses comes from here (directly or derived: deliver.<destination>,
deliver.<destination>.retry.<n>). A wrong file is refused at start with the field path and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, timedelta, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.clock import TimeOfDay, TimeZoneName
from hub.durations import Duration

_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,200}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

FieldKind = Literal[
    "string", "integer", "number", "boolean", "object", "array", "datetime", "date", "email", "phone", "cpf"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopologyError(ValueError):
    """topics.yaml is unreadable or invalid; `problems` lists (field path, rule) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {path}: {rule}" for path, rule in problems)
        super().__init__(f"{source} is invalid ({len(problems)} problem(s)):\n{lines}")


def _topic_name(value: str) -> str:
    if not _TOPIC_NAME.match(value) or value in {".", ".."}:
        raise ValueError(f"{value!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-')")
    return value


class ClusterProfile(_Strict):
    replication_factor: int = Field(ge=1, le=7)
    min_insync_replicas: int = Field(ge=1, le=7)

    @model_validator(mode="after")
    def _isr_within_rf(self) -> ClusterProfile:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError("min_insync_replicas must not exceed replication_factor")
        return self


class Defaults(_Strict):
    retention: Duration = timedelta(days=30)
    audit_retention: Duration = timedelta(days=90)
    max_event_bytes: int = Field(default=1_048_576, ge=1024, le=16 * 1_048_576)
    # The business's wall clock: sync `at` times are read in it (a sync may name its own).
    timezone: TimeZoneName = "UTC"


class PriorityTopic(_Strict):
    level: int = Field(ge=1, le=5)
    topic: str
    label: str
    partitions: int = Field(default=6, ge=1, le=1000)
    retention: Duration | None = None

    _name = field_validator("topic")(_topic_name)


class SystemTopic(_Strict):
    topic: str
    partitions: int = Field(default=3, ge=1, le=1000)
    retention: Duration | None = None
    compacted: bool = False

    _name = field_validator("topic")(_topic_name)


class SystemTopics(_Strict):
    dead_letter: SystemTopic
    deliveries: SystemTopic
    trail: SystemTopic
    audit: SystemTopic
    scheduled: SystemTopic
    sync_state: SystemTopic
    health: SystemTopic
    # Operators' DLQ status per dead-letter record (key "<partition>:<offset>"); defaulted so older
    # topics.yaml files stay valid.
    dead_letter_state: SystemTopic = SystemTopic(topic="deadletter.state", partitions=1, compacted=True)
    # API key records (hashes only) when CARINHO_KEYS_BACKEND=kafka: every ingress replica follows it.
    api_keys: SystemTopic = SystemTopic(topic="api-keys", partitions=1, compacted=True)


class RateLimit(_Strict):
    per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=10_000_000)


class WebhookMapping(_Strict):
    """Maps a native payload (site form, Z-API callback) onto an event. Values are dotted paths into
    the payload, or `=literal` for a constant; `a|b` takes the first present, non-blank one."""

    event_type: str
    when: dict[str, Any] = Field(default_factory=dict)  # every path equals its value
    unless: dict[str, Any] = Field(default_factory=dict)  # and none of these equals its value
    idempotency_key: str
    data: dict[str, str]
    metadata: dict[str, str] = Field(default_factory=dict)


class Source(_Strict):
    description: str = ""
    rate_limit: RateLimit = RateLimit(per_second=50, burst=100)
    webhooks: dict[str, WebhookMapping] = Field(default_factory=dict)


class DataSpec(_Strict):
    required: list[str] = Field(default_factory=list)
    fields: dict[str, FieldKind] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _required_are_fields(self) -> DataSpec:
        missing = [name for name in self.required if name not in self.fields]
        if missing:
            raise ValueError(f"required field(s) {missing} are not declared in fields")
        return self


class EventType(_Strict):
    sources: list[str] = Field(min_length=1)
    priority: int = Field(ge=1, le=5)
    data: DataSpec = DataSpec()


class Auth(_Strict):
    header: str
    scheme: str | None = None


class TimeoutPolicy(_Strict):
    """Adaptive timeout: p99 of observed latency x p99_factor, kept within [min, max]."""

    initial: Duration
    min: Duration
    max: Duration
    p99_factor: float = Field(default=3.0, ge=1.0, le=100.0)

    @model_validator(mode="after")
    def _ordered(self) -> TimeoutPolicy:
        if not (self.min <= self.initial <= self.max):
            raise ValueError("timeouts must satisfy min <= initial <= max")
        return self


class BreakerPolicy(_Strict):
    consecutive_failures: int = Field(ge=1, le=1000)
    error_rate: float = Field(gt=0, le=1)
    window: Duration
    min_calls: int = Field(ge=1, le=100_000)
    open_for: Duration


class RetryPolicy(_Strict):
    """Exponential schedule as explicit tiers: one retry topic per tier, then the dead-letter topic."""

    tiers: list[Duration] = Field(min_length=1, max_length=10)
    jitter: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _non_decreasing(self) -> RetryPolicy:
        if any(b < a for a, b in zip(self.tiers, self.tiers[1:], strict=False)):
            raise ValueError("retry tiers must not get shorter (backoff grows)")
        return self


FallbackCondition = Literal["breaker_open", "retries_exhausted"]


class Fallback(_Strict):
    destination: str
    when: list[FallbackCondition] = Field(min_length=1)
    message_types: list[str] = Field(min_length=1)


class Destination(_Strict):
    description: str = ""
    kind: Literal["http", "zapi", "sms"] = "http"
    auth: Auth | None = None
    timeout: TimeoutPolicy
    breaker: BreakerPolicy
    retry: RetryPolicy
    rate_limit: RateLimit
    concurrency: int = Field(default=16, ge=1, le=1024)
    partitions: int = Field(default=6, ge=1, le=1000)
    fallback: Fallback | None = None


class RouteTarget(_Strict):
    path: str = Field(pattern=r"^/")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    map: dict[str, str] | None = None
    hook: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$")
    retry: RetryPolicy | None = None  # per event type override of the destination's schedule

    @model_validator(mode="after")
    def _one_transform(self) -> RouteTarget:
        if self.map is not None and self.hook is not None:
            raise ValueError("use either map or hook, not both")
        return self


class Route(_Strict):
    integration: str
    priority: int | None = Field(default=None, ge=1, le=5)
    to: dict[str, RouteTarget] = Field(min_length=1)


class Integration(_Strict):
    name: str
    sources: list[str] = Field(min_length=1)
    destinations: list[str] = Field(min_length=1)
    trigger: str
    sync: str | None = None
    sla: Duration
    owner: str


class _Zoned(_Strict):
    """A setting read on a wall clock: its `timezone`, which Topology fills with defaults.timezone
    when the file names none."""

    timezone: TimeZoneName | None = None

    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone) if self.timezone else UTC


class Sync(_Zoned):  # `timezone`: of `at`
    source: str
    event_type: str
    every: Duration
    at: TimeOfDay | None = None
    path: str = Field(pattern=r"^/")
    page_size: int = Field(default=200, ge=1, le=10_000)


CampaignSlug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
CampaignName = Annotated[str, Field(min_length=1, max_length=80)]


class LeadAutoReply(_Zoned):
    event_type: str
    destination: str
    templates: dict[str, str]
    # utm_campaign slug -> the name the "campaign" template shows. Only these campaigns use it: the
    # UTM text is the visitor's to write (processors/automations/lead_auto_reply.py).
    campaigns: dict[CampaignSlug, CampaignName] = {}
    # At most one auto-reply per phone and calendar day (in `timezone`): a contact who writes five
    # WhatsApp messages is five leads, but is greeted once.
    once_per_phone_per_day: bool = True

    @field_validator("templates")
    @classmethod
    def _has_default(cls, value: dict[str, str]) -> dict[str, str]:
        if "default" not in value:
            raise ValueError("templates must include 'default'")
        return value


class QuietHours(_Strict):
    """No automated message to a client inside [start, end) wall-clock time (may wrap midnight)."""

    start: TimeOfDay
    end: TimeOfDay


class FeedbackRequest(_Zoned):
    event_type: str
    destination: str
    delay: Duration
    template: str
    # A request that falls due inside quiet hours waits for their end (a service synced at night
    # must not message the client at 3 a.m.); read in `timezone`.
    quiet_hours: QuietHours | None = None


class Automations(_Strict):
    lead_auto_reply: LeadAutoReply
    feedback_request: FeedbackRequest


class Alerts(_Strict):
    dead_letter_over: int = Field(default=10, ge=0)
    error_rate_over: float = Field(default=0.05, gt=0, le=1)
    sync_consecutive_failures: int = Field(default=2, ge=1)


@dataclass(frozen=True)
class TopicSpec:
    """A topic as it should exist on the cluster."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic of a processors' table (Faust's naming; app_id = Topology.router_group)."""
    return f"{app_id}-{table}-changelog"


class Topology(_Strict):
    version: Literal[1]
    # Prefix for every topic name (tests and side-by-side hubs on one cluster); set with
    # `with_namespace`, from CARINHO_TOPIC_NAMESPACE. Empty in production.
    namespace: str = Field(default="", pattern=r"^([a-zA-Z0-9_-]+\.)?$")
    cluster_profiles: dict[str, ClusterProfile] = Field(min_length=1)
    defaults: Defaults = Defaults()
    priorities: list[PriorityTopic] = Field(min_length=5, max_length=5)
    system_topics: SystemTopics
    sources: dict[str, Source] = Field(min_length=1)
    event_types: dict[str, EventType] = Field(min_length=1)
    destinations: dict[str, Destination] = Field(min_length=1)
    routes: dict[str, Route]
    integrations: dict[str, Integration]
    syncs: dict[str, Sync] = Field(default_factory=dict)
    automations: Automations
    alerts: Alerts = Alerts()

    @model_validator(mode="after")
    def _cross_references(self) -> Topology:
        for name, sync in self.syncs.items():  # every sync knows its zone (the file's default if unnamed)
            if sync.timezone is None:
                self.syncs[name] = sync.model_copy(update={"timezone": self.defaults.timezone})
        for name in ("feedback_request", "lead_auto_reply"):  # likewise the automations that read a clock
            automation = getattr(self.automations, name)
            if automation.timezone is None:
                zoned = automation.model_copy(update={"timezone": self.defaults.timezone})
                object.__setattr__(self, "automations", self.automations.model_copy(update={name: zoned}))
        problems = _cross_reference_problems(self)
        if problems:
            # Raised as one ValueError; load_topology turns the text back into (path, rule) pairs.
            raise ValueError("\n".join(f"{path}: {rule}" for path, rule in problems))
        return self

    # ---- derived names -------------------------------------------------------------------------
    def with_namespace(self, namespace: str) -> Topology:
        """The same topology with every topic name prefixed (e.g. "test42.")."""
        if namespace and not namespace.endswith("."):
            namespace += "."
        return Topology.model_validate({**self.model_dump(mode="json"), "namespace": namespace})

    def priority_topic(self, level: int) -> str:
        return self.namespace + self._priority_by_level[level].topic

    @cached_property
    def _priority_by_level(self) -> dict[int, PriorityTopic]:
        return {p.level: p for p in self.priorities}

    @property
    def event_topics(self) -> list[str]:
        """events.p1 .. events.p5, most urgent first."""
        return [self.priority_topic(level) for level in range(1, 6)]

    def delivery_topic(self, destination: str) -> str:
        if destination not in self.destinations:
            raise KeyError(f"unknown destination {destination!r}")
        return f"{self.namespace}deliver.{destination}"

    def retry_topics(self, destination: str) -> list[str]:
        tiers = len(self.destinations[destination].retry.tiers)
        return [f"{self.namespace}deliver.{destination}.retry.{n}" for n in range(1, tiers + 1)]

    def system_topic(self, name: str) -> str:
        """dead_letter, deliveries, trail, audit, scheduled, sync_state, health, dead_letter_state or api_keys."""
        topic: SystemTopic = getattr(self.system_topics, name)
        return self.namespace + topic.topic

    @property
    def dead_letter_topic(self) -> str:
        return self.system_topic("dead_letter")

    @property
    def router_group(self) -> str:
        """The processors' consumer group on events.p1..p5: its lag is "pending per priority"."""
        return self.consumer_group("processors")

    def consumer_group(self, name: str) -> str:
        """Consumer group ids are namespaced like topics, so test hubs never share offsets."""
        return f"{self.namespace}carinho.{name}"

    def retry_policy(self, destination: str, event_type: str | None = None) -> RetryPolicy:
        """The destination's schedule, or the route's per event type override."""
        if event_type is not None:
            route = self.routes.get(event_type)
            target = route.to.get(destination) if route else None
            if target is not None and target.retry is not None:
                return target.retry
        return self.destinations[destination].retry

    def default_priority(self, event_type: str) -> int:
        route = self.routes.get(event_type)
        if route is not None and route.priority is not None:
            return route.priority
        return self.event_types[event_type].priority

    def topic_specs(self, profile: str) -> list[TopicSpec]:
        """Every topic the hub needs, with partitions, replication and configs for `profile`."""
        if profile not in self.cluster_profiles:
            raise KeyError(f"unknown cluster profile {profile!r}; defined: {sorted(self.cluster_profiles)}")
        cluster = self.cluster_profiles[profile]
        rf, isr = cluster.replication_factor, cluster.min_insync_replicas
        default_retention = self.defaults.retention

        def spec(name: str, partitions: int, retention: timedelta | None, compacted: bool = False) -> TopicSpec:
            config = {"min.insync.replicas": str(isr)}
            if compacted:
                config["cleanup.policy"] = "compact"
            else:
                config["cleanup.policy"] = "delete"
                config["retention.ms"] = str(int((retention or default_retention).total_seconds() * 1000))
            return TopicSpec(name, partitions, rf, config)

        specs = [spec(self.namespace + p.topic, p.partitions, p.retention) for p in self.priorities]
        for _, topic in self.system_topics:
            specs.append(spec(self.namespace + topic.topic, topic.partitions, topic.retention, topic.compacted))
        for name, dest in self.destinations.items():
            specs.append(spec(self.delivery_topic(name), dest.partitions, None))
            specs.extend(spec(t, dest.partitions, None) for t in self.retry_topics(name))
        return specs


def _cross_reference_problems(t: Topology) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    sources, types, dests = set(t.sources), set(t.event_types), set(t.destinations)

    def allowed(names: set[str]) -> str:
        return ", ".join(sorted(names))

    levels = sorted(p.level for p in t.priorities)
    if levels != [1, 2, 3, 4, 5]:
        problems.append(("priorities", f"must define levels 1-5 exactly once each, got {levels}"))

    for name in t.sources:
        if not _NAME.match(name):
            problems.append((f"sources.{name}", "source names are lower-case letters, digits, '-' or '_'"))
    for name in t.destinations:
        if not _NAME.match(name):
            problems.append((f"destinations.{name}", "destination names are lower-case letters, digits, '-'"))

    for name, et in t.event_types.items():
        if not _EVENT_TYPE.match(name):
            problems.append((f"event_types.{name}", "event types look like 'entity.action' (lower-case)"))
        for i, src in enumerate(et.sources):
            if src not in sources:
                problems.append(
                    (f"event_types.{name}.sources[{i}]", f"unknown source {src!r}; allowed: {allowed(sources)}")
                )

    for src_name, source in t.sources.items():
        for hook_name, hook in source.webhooks.items():
            path = f"sources.{src_name}.webhooks.{hook_name}.event_type"
            if hook.event_type not in types:
                problems.append((path, f"unknown event type {hook.event_type!r}; allowed: {allowed(types)}"))
            elif src_name not in t.event_types[hook.event_type].sources:
                problems.append(
                    (
                        path,
                        f"source {src_name!r} may not send {hook.event_type!r} (event_types.{hook.event_type}.sources)",
                    )
                )

    for et_name, route in t.routes.items():
        base = f"routes.{et_name}"
        if et_name not in types:
            problems.append((base, f"unknown event type {et_name!r}; allowed: {allowed(types)}"))
        if route.integration not in t.integrations:
            problems.append(
                (
                    f"{base}.integration",
                    f"unknown integration {route.integration!r}; allowed: {allowed(set(t.integrations))}",
                )
            )
        for dest_name, target in route.to.items():
            if dest_name not in dests:
                problems.append(
                    (f"{base}.to.{dest_name}", f"unknown destination {dest_name!r}; allowed: {allowed(dests)}")
                )
                continue
            if target.retry is not None and len(target.retry.tiers) > len(t.destinations[dest_name].retry.tiers):
                problems.append(
                    (
                        f"{base}.to.{dest_name}.retry.tiers",
                        f"at most {len(t.destinations[dest_name].retry.tiers)} tiers (the destination's retry topics)",
                    )
                )
            if target.map is None and target.hook is None:
                problems.append((f"{base}.to.{dest_name}", "needs a transform: map or hook"))

    for name, integ in t.integrations.items():
        for i, src in enumerate(integ.sources):
            if src not in sources:
                problems.append(
                    (f"integrations.{name}.sources[{i}]", f"unknown source {src!r}; allowed: {allowed(sources)}")
                )
        for i, dst in enumerate(integ.destinations):
            if dst not in dests:
                problems.append(
                    (
                        f"integrations.{name}.destinations[{i}]",
                        f"unknown destination {dst!r}; allowed: {allowed(dests)}",
                    )
                )
        if integ.sync is not None and integ.sync not in t.syncs:
            problems.append(
                (f"integrations.{name}.sync", f"unknown sync {integ.sync!r}; allowed: {allowed(set(t.syncs))}")
            )

    for name, sync in t.syncs.items():
        if sync.source not in sources:
            problems.append((f"syncs.{name}.source", f"unknown source {sync.source!r}; allowed: {allowed(sources)}"))
        if sync.event_type not in types:
            problems.append(
                (f"syncs.{name}.event_type", f"unknown event type {sync.event_type!r}; allowed: {allowed(types)}")
            )

    for name, dest in t.destinations.items():
        if dest.fallback is not None and dest.fallback.destination not in dests - {name}:
            problems.append(
                (
                    f"destinations.{name}.fallback.destination",
                    f"unknown destination {dest.fallback.destination!r}; allowed: {allowed(dests - {name})}",
                )
            )

    for auto_name in ("lead_auto_reply", "feedback_request"):
        auto = getattr(t.automations, auto_name)
        if auto.event_type not in types:
            problems.append(
                (
                    f"automations.{auto_name}.event_type",
                    f"unknown event type {auto.event_type!r}; allowed: {allowed(types)}",
                )
            )
        if auto.destination not in dests:
            problems.append(
                (
                    f"automations.{auto_name}.destination",
                    f"unknown destination {auto.destination!r}; allowed: {allowed(dests)}",
                )
            )

    # Every topic name, given or derived, must be unique.
    seen: dict[str, str] = {}
    named: list[tuple[str, str]] = [(f"priorities[{i}].topic", p.topic) for i, p in enumerate(t.priorities)]
    named += [(f"system_topics.{k}.topic", v.topic) for k, v in t.system_topics]
    for dest_name, dest in t.destinations.items():
        named.append((f"destinations.{dest_name} (derived deliver topic)", f"deliver.{dest_name}"))
        named += [
            (f"destinations.{dest_name}.retry.tiers[{n - 1}] (derived retry topic)", f"deliver.{dest_name}.retry.{n}")
            for n in range(1, len(dest.retry.tiers) + 1)
        ]
    for path, topic in named:
        if topic in seen:
            problems.append((path, f"duplicate topic {topic!r} (also at {seen[topic]})"))
        else:
            seen[topic] = path
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


def parse_topology(raw: Any, source: str = "topics.yaml") -> Topology:
    """Validate an already-parsed YAML document; raise TopologyError naming every bad field."""
    if not isinstance(raw, dict):
        raise TopologyError(source, [("(file)", "must be a YAML mapping at the top level")])
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = str(err["msg"]).removeprefix("Value error, ")
            if (not loc and "\n" in msg) or (not loc and ": " in msg):
                for line in msg.splitlines():
                    path, _, rule = line.partition(": ")
                    problems.append((path, rule))
            else:
                problems.append((_format_loc(loc), msg))
        raise TopologyError(source, problems) from None


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(str(path), [("(file)", f"not valid YAML: {exc}")]) from None
    return parse_topology(raw, str(path))
