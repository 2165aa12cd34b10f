"""Webhook subscribers: an HTTP POST of the message, signed (see `service.publish.signing`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from service.publish.message import DeliveryFailed, Message
from service.publish.signing import signed_headers
from service.publish.subscribers import payload_kind

if TYPE_CHECKING:
    from core.settings import SubscriberConfig
    from service.publish.settings import PublishSettings

USER_AGENT = "nowcast-publisher/2"
RETRYABLE_STATUS = frozenset({408, 425, 429})  # besides every 5xx


class WebhookSubscriber:
    """POSTs to one URL with one secret. Redirects are not followed (a 3xx is a failure).

    Neither the URL (it may carry a token) nor the secret appear in reasons or logs.
    """

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        payload: str,
        timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.payload = payload
        self._url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    @classmethod
    def from_config(
        cls, config: SubscriberConfig, settings: PublishSettings, clock: Callable[[], float]
    ) -> WebhookSubscriber:
        assert config.url is not None and config.secret is not None  # checked by the settings
        return cls(
            config.name,
            config.url,
            config.secret.get_secret_value(),
            payload_kind(config),
            settings.publish_timeout_s,
            clock,
        )

    def send(self, message: Message) -> str:
        job = message.job
        headers = {
            "Content-Type": message.content_type,
            "User-Agent": USER_AGENT,
            **signed_headers(self._secret, job.delivery_id, message.body, int(self._clock())),
            "X-Nowcast-Site": job.site_id,
            "X-Nowcast-Issue-Time": job.issue_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        try:
            response = self._client.post(self._url, content=message.body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"timed out ({type(exc).__name__})", retryable=True) from None
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"connection failed ({type(exc).__name__})", True) from None
        status = response.status_code
        if 200 <= status < 300:
            return f"HTTP {status}"
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryFailed(f"HTTP {status}", retryable=retryable)

    def close(self) -> None:
        self._client.close()
