"""Screens of the app: home, new experiment, run dashboard, history and compare, dialogs."""
