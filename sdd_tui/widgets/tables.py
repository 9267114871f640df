"""A DataTable whose Enter shows in the footer as Open."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class OpenTable(DataTable):
    BINDINGS = [Binding("enter", "select_cursor", "Open")]
