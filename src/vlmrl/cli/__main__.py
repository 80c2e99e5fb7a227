"""`python -m vlmrl.cli`: the `vlmrl` command (same as the console script)."""

from vlmrl.cli import main

main()
