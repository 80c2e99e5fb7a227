"""`vlmrl demo`: the whole loop (data, reward, GRPO, curves, evaluation) on the tiny model, on a CPU.

`synthetic` draws the demo's questions, `warmup` teaches the tiny model the answer format and part of the skill, `pipeline` runs it all.
"""
