"""Storage doubles shared by the tests of what reads the storage."""

from __future__ import annotations

from loanrisk.storage import MemoryStorage


class WholeReadsRecorded(MemoryStorage):
    """Memory storage that records the files read whole (``read_bytes``); streamed reads
    (``open_read``: a chunk at a time) are not recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.whole: list[str] = []

    def read_bytes(self, path: str) -> bytes:
        self.whole.append(path)
        return super().read_bytes(path)
