"""Time limits for slow clients, which uvicorn leaves unbounded.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` but waits forever for
the headers of a request (a client that connects and sends nothing, or half a header line):
1,000 such connections held 1,000 file descriptors. `HeaderTimeoutProtocol` is an h11 protocol
for uvicorn (``http=``) that closes a connection whose request headers are not complete within
``http_header_timeout_s`` (`configure`, called where the app is made, in every worker).
A body that stalls is the route's to bound (``POST .../frames`` reads it under
``http_body_timeout_s``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection left in the middle of request headers
    (or without any request) for ``header_timeout_s``."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # headers still to come
            if self._header_timer is None:
                self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection without complete request headers after %g s",
                     self.header_timeout_s)  # fmt: skip
            self.transport.close()


def configure(header_timeout_s: float) -> None:
    """Set this process's header limit (a class attribute: uvicorn makes the protocols)."""
    HeaderTimeoutProtocol.header_timeout_s = header_timeout_s
