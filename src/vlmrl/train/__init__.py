"""Training: experiment config -> veRL Hydra overrides on Ray (`train.verl`) | TRL GRPOTrainer on one
machine (`train.trl`). Shared by both engines: `config` (`load_config` / `ExperimentConfig` /
`dump_config`), `backends.SUPPORT` (what each engine supports; `config.check_support`), `preflight`,
`budget`, `metrics` and `launch` (the `vlmrl train` sequence: `prepare_verl` / `run_trl`).
Submodules are imported on use.
"""
