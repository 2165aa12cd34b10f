"""File subscribers: each message written atomically into a folder under a predictable name.

``<folder>/<site>/nowcast_<site>_<method>_<YYYYmmddTHHMMZ>.<nc|json>``: written to a temporary
file in the same folder, flushed to disk (fsync), then renamed over the final name
(`core.files.write_atomic`), so a reader never sees a partial file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.files import write_atomic
from service.publish.message import DeliveryFailed, Message
from service.publish.payload import file_name
from service.publish.subscribers import payload_kind

if TYPE_CHECKING:
    from core.settings import SubscriberConfig


class FolderSubscriber:
    def __init__(self, name: str, folder: Path, payload: str) -> None:
        self.name = name
        self.payload = payload
        self.folder = folder

    @classmethod
    def from_config(cls, config: SubscriberConfig) -> FolderSubscriber:
        assert config.folder is not None  # checked by the settings
        return cls(config.name, config.folder, payload_kind(config))

    def path_for(self, message: Message) -> Path:
        job = message.job
        name = file_name(job.site_id, job.method, job.issue_time, message.suffix)
        return self.folder / job.site_id / name

    def send(self, message: Message) -> str:
        path = self.path_for(message)
        try:
            write_atomic(path, message.body)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write {path}: {exc.strerror}", retryable=True) from None
        return f"wrote {path}"

    def close(self) -> None:
        return None
