"""Small helpers shared by every stage: atomic writes and jsonl/YAML reading (`io`), dotted `key=value`
overrides (`overrides`), registries made of one file per entry (`registry`), a thread-safe LRU map (`lru`).
"""
