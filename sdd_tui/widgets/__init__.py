"""Widgets of the app: plotext charts, the progress panel, the event log."""
