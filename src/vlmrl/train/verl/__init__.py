"""The veRL engine's room: experiment config -> Hydra overrides (`overrides`) -> validation against the
installed veRL (`validate`) -> launch, local or as a Ray job, and runs on this machine (`launch`), with
veRL's CPU platform (`cpu`), vlmrl's veRL fixes (`patches`), `--smoke` (`smoke`) and the model merger
(`export`). Submodules are imported on use.
"""
