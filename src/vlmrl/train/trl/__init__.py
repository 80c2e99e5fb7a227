"""The TRL engine's room: experiment config -> `GRPOConfig` (`config`), datasets (`loaders`), reward
functions (`rewards`), the patched `GRPOTrainer` and its callbacks (`trainer`), and `backend.run`.
Submodules are imported on use.
"""
