"""vlmrl: RL (GRPO with DAPO's tricks) of vision-language models for math reasoning.

Stages live in subpackages in the order data travels: data -> reward -> train -> eval -> report.
"""

__version__ = "0.1.0"
