"""The publisher's settings on the shared base: what is posted to whom, when, how hard it tries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.settings import CoreSettings, SubscriberConfig, check_site_ids

_PLACEHOLDER_WORDS = ("change", "placeholder", "example", "secret", "password", "xxxx")


class PublishSettings(CoreSettings):
    """The publisher's: what is posted to whom, when, and how hard it tries."""

    publish_mode: Literal["cron", "on_forecast"] = Field(
        default="cron", description="cron: the latest nowcast per cycle; on_forecast: each one."
    )
    publish_cron: str = Field(
        default="*/6 * * * *", description="Cycle of the cron mode (UTC), radar cadence aligned."
    )
    publish_sites: tuple[str, ...] = Field(default=(), description="Sites published; () = all.")
    publish_method: str = Field(default="convlstm", description="The method whose nowcasts go.")
    subscribers: tuple[SubscriberConfig, ...] = Field(
        default=(),
        description="Receivers, a JSON list of SubscriberConfig (webhook: url and secret; "
        "file: folder); names unique.",
    )
    publish_max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=5,
        description="Attempts of a delivery before it is dead-lettered; a failure no retry "
        "can mend (a 4xx) ends them at once.",
    )
    publish_backoff_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=1.0,
        description="Retry wait base: before attempt k+1 a wait drawn uniformly from 0 to "
        "this x 2^(k-1).",
    )
    publish_backoff_max_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0,
        description="Cap of the retry wait; must not be below publish_backoff_s.",
    )
    publish_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="Timeout of a webhook request's connect, write and read, each (seconds).",
    )
    publish_lock_ttl_s: Annotated[int, Field(ge=1, le=86_400)] = Field(
        default=120,
        description="TTL of a delivery's lock, renewed before each attempt; must exceed "
        "3 x publish_timeout_s + publish_backoff_max_s.",
    )
    publish_claim_idle_ms: Annotated[int, Field(ge=100)] = Field(
        default=60_000,
        description="on_forecast: a forecast event pending this long (ms) with another "
        "publisher, taken for dead, is claimed.",
    )
    publish_dead_letters_max: Annotated[int, Field(ge=10)] = Field(
        default=10_000,
        description="Most dead letters kept in Redis; beyond it the oldest are dropped.",
    )

    @field_validator("publish_sites")
    @classmethod
    def _publish_sites_are_valid(cls, sites: tuple[str, ...]) -> tuple[str, ...]:
        check_site_ids(list(sites), "publish_sites")
        return sites

    @field_validator("publish_cron")
    @classmethod
    def _cron_is_valid(cls, expression: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(expression):
            raise ValueError(f"publish_cron {expression!r} is not a cron expression")
        return expression

    @field_validator("subscribers")
    @classmethod
    def _subscribers_fit_their_kinds(
        cls, subscribers: tuple[SubscriberConfig, ...]
    ) -> tuple[SubscriberConfig, ...]:
        names = [s.name for s in subscribers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"subscriber names must be unique; repeated: {repeated}")
        for subscriber in subscribers:
            check_subscriber(subscriber)
        return subscribers

    @model_validator(mode="after")
    def _retries_are_consistent(self) -> PublishSettings:
        if self.publish_backoff_max_s < self.publish_backoff_s:
            raise ValueError("publish_backoff_max_s must not be below publish_backoff_s")
        # a lock must outlive one back-off and one attempt: connect, write and read may each
        # take up to publish_timeout_s
        attempt_s = 3 * self.publish_timeout_s + self.publish_backoff_max_s
        if self.publish_lock_ttl_s <= attempt_s:
            raise ValueError(
                f"publish_lock_ttl_s must exceed 3 x publish_timeout_s + publish_backoff_max_s "
                f"({attempt_s:g} s): a lock must outlive one back-off and one attempt"
            )
        return self


def check_subscriber(config: SubscriberConfig) -> None:
    """ValueError unless ``config``'s fields fit its kind and its secret is strong."""
    from service.publish.subscribers import get_kind  # the registry; imports no numpy

    kind = get_kind(config.kind)
    used = {"url": config.url, "folder": config.folder, "secret": config.secret}
    missing = [f for f in kind.needs if used[f] is None]
    unused = [f for f, v in used.items() if v is not None and f not in kind.needs]
    if missing or unused:
        raise ValueError(
            f"subscriber {config.name!r} of kind {config.kind!r} needs {list(kind.needs)}; "
            f"missing {missing}, not used by this kind {unused}"
        )
    if config.payload is not None and config.payload not in kind.payloads:
        raise ValueError(f"kind {config.kind!r} sends {list(kind.payloads)}, not {config.payload}")
    if config.secret is not None:
        from service.publish.signing import secret_key

        value = config.secret.get_secret_value()
        if any(w in value.lower() for w in _PLACEHOLDER_WORDS):
            raise ValueError(f"subscriber {config.name!r}: the secret is a placeholder")
        try:
            secret_key(value)
        except ValueError as err:
            raise ValueError(f"subscriber {config.name!r}: {err}") from None
