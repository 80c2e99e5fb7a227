"""Training: experiment config -> veRL Hydra overrides on Ray | TRL GRPOTrainer on one machine.

Public API: `config.load_config` / `ExperimentConfig` / `dump_config`, `backends.SUPPORT` (what each backend
supports; `config.check_support`), `launch.prepare_verl` / `run_trl` (what `vlmrl train` runs), `trl_backend.run`,
`verl_launch.plan`, `preflight.run_preflight`, `metrics.read_metrics`. Submodules are imported on use.
"""
