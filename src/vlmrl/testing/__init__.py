"""Offline test assets: a tiny Qwen2.5-VL built locally, for tests, the demo and CPU trials."""
