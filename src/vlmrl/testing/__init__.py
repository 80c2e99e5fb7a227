"""Offline test assets: a tiny Qwen2.5-VL built locally (`tiny_vlm`, for tests, the demo and CPU trials)
and scripted OpenAI-compatible servers on loopback (`scripted_judge`: a chat server, a judge).
"""
