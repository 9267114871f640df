"""Sweeps: grids of settings times seeds, their members run on the local or the Ray engine."""
