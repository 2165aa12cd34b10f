"""The registry of subscriber kinds: ``get_kind(name)`` (pysteps style), ``build_subscribers``.

A kind declares the configuration fields it needs (`core.settings.SubscriberConfig`), the
payloads it can send (the first is its default) and how to build it. Importing this module
imports neither numpy nor the network stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.settings import SubscriberConfig
    from service.publish.message import Message
    from service.publish.settings import PublishSettings


class Subscriber(Protocol):
    """A receiver of messages. ``send`` raises `service.publish.message.DeliveryFailed`."""

    name: str
    payload: str

    def send(self, message: Message) -> str:
        """Deliver once; returns what happened in words (for logs), e.g. "HTTP 200"."""
        ...

    def close(self) -> None: ...


Builder = Callable[["SubscriberConfig", "PublishSettings", Callable[[], float]], Subscriber]


@dataclass(frozen=True)
class SubscriberKind:
    name: str
    needs: tuple[str, ...]  # fields of SubscriberConfig this kind requires (and uses)
    payloads: tuple[str, ...]  # the first is the default
    build: Builder


def _build_webhook(
    config: SubscriberConfig, settings: PublishSettings, clock: Callable[[], float]
) -> Subscriber:
    from service.publish.subscribers.webhook import WebhookSubscriber

    return WebhookSubscriber.from_config(config, settings, clock)


def _build_folder(
    config: SubscriberConfig, settings: PublishSettings, clock: Callable[[], float]
) -> Subscriber:
    from service.publish.subscribers.folder import FolderSubscriber

    return FolderSubscriber.from_config(config)


_KINDS: dict[str, SubscriberKind] = {
    "webhook": SubscriberKind("webhook", ("url", "secret"), ("summary", "netcdf"), _build_webhook),
    "file": SubscriberKind("file", ("folder",), ("netcdf", "summary"), _build_folder),
}


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)


def get_kind(name: str) -> SubscriberKind:
    """The kind called ``name``; ValueError listing the valid names otherwise."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown subscriber kind {name!r}; valid: {list(_KINDS)}") from None


def payload_kind(config: SubscriberConfig) -> str:
    """The payload ``config`` sends: its own choice, else its kind's default."""
    return config.payload or get_kind(config.kind).payloads[0]


def build_subscribers(
    settings: PublishSettings, clock: Callable[[], float]
) -> dict[str, Subscriber]:
    """Every configured subscriber by name; ``clock`` gives unix seconds for signatures."""
    return {c.name: get_kind(c.kind).build(c, settings, clock) for c in settings.subscribers}
