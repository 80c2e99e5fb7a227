"""Test support: scripted OpenAI-compatible servers on loopback (`scripted_judge`: a chat server, a
judge) for faults a real server can't be made to show. The tiny models users run live in `vlmrl.tiny`.
"""
