"""Follow a run's `events.jsonl` as another process appends to it (like `tail -f`)."""

from __future__ import annotations

import json
from pathlib import Path

from sdd_tui.core.events import Event, event_from_json


class EventFollower:
    """Reads the events added to a file since the last call; a half-written last line waits."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset  # where to start reading: 0, or the end of what was already read elsewhere
        self.skipped = 0  # complete lines that were not events (a torn or foreign line)
        self._partial = b""

    def read_new(self) -> list[Event]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # the file was replaced: start over
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(size - self.offset)
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended with a newline
        return [event for event in map(self._parse, lines) if event is not None]

    def _parse(self, line: bytes) -> Event | None:
        if not line.strip():
            return None
        try:
            return event_from_json(line.decode("utf-8"))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            self.skipped += 1
            return None
