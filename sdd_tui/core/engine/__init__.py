"""Training one run: the prune-retrain loop, rounds, pruning, models, checkpoints, pause/stop requests."""
