"""Training: experiment config -> veRL Hydra overrides | TRL GRPOTrainer."""
