"""Model optimisation: quantisation (and later distillation, pruning), offline only."""
