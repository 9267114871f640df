"""sdd-tui: the command line and the Textual app over the `core` engine."""

__version__ = "0.1.0"
