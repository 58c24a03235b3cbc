"""Where models run: the device and dtype, putting models there, and giving their memory back."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterable

import torch


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# ``auto`` turns a CPU model of at least this many parameters to bf16 where the CPU computes in bf16
# natively. Measured on CPU (docs: README, Performance): the SD1.5 architecture at 64 px runs 3.0x
# faster in bf16 (mean pixel difference 1.1/255); the 2.2M-parameter demo UNet only 1.14x (its time
# goes to per-layer overhead, not arithmetic), so it stays in fp32.
BF16_MIN_PARAMETERS = 100_000_000


def default_device(requested: str | None = None, dtype: str | None = None) -> tuple[torch.device, torch.dtype]:
    """The device, and the dtype to load in: ``dtype`` (fp32, bf16, fp16), or for None/``auto`` fp16 on
    CUDA and fp32 on the CPU (see :func:`prefers_bf16` for auto's bf16 on the CPU)."""
    if dtype not in (None, "auto", *DTYPES):
        raise ValueError(f"dtype {dtype!r}: use auto, {', '.join(DTYPES)}")
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise ValueError(f"device {requested!r}: use cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r}: this torch has no usable CUDA GPU; use --device cpu")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {requested!r}: there are {torch.cuda.device_count()} CUDA GPU(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype in DTYPES:
        return device, DTYPES[dtype]
    return device, (torch.float16 if device.type == "cuda" else torch.float32)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated, and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def prefers_bf16(device: torch.device, dtype: str | None, unet: torch.nn.Module) -> bool:
    """``auto`` on the CPU: bf16 for a large UNet (:data:`BF16_MIN_PARAMETERS`) on a CPU with native bf16."""
    return (dtype in (None, "auto") and device.type == "cpu" and cpu_has_bf16()
            and sum(p.numel() for p in unet.parameters()) >= BF16_MIN_PARAMETERS)


def place(modules: Iterable[torch.nn.Module | None], device: torch.device, dtype: torch.dtype, *,
          offload: bool = False) -> None:
    """Put models (None: absent) in inference mode on ``device`` in ``dtype``.

    ``offload`` (CUDA only) keeps each model in CPU memory until it runs, with accelerate's hooks:
    about 2.5 GB less GPU memory for SD1.5, at the cost of host-device copies every step.
    """
    hook = None
    for module in (m.eval().requires_grad_(False) for m in modules if m is not None):
        if next(module.parameters()).dtype != dtype:  # cast only when needed: diffusers warns on every cast
            module.to(dtype)
        if offload and device.type == "cuda":
            from accelerate import cpu_offload_with_hook

            # In the order they run, so each hook offloads the previous model.
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
        else:
            module.to(device)


def available_bytes(device: torch.device) -> int | None:
    """Memory a run can still take on ``device``: free VRAM on CUDA, available RAM on the CPU; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:  # MemAvailable counts reclaimable caches, as the kernel would when we allocate
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def free_memory() -> None:
    """Return freed model memory to the system (and CUDA's cache to the driver)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    # glibc keeps freed heap pages for reuse (about 1.5 GB after an SD1.5 load on CPU): the next
    # model could reuse them, but a long-lived process (the web UI) would hold them for nothing.
    if sys.platform == "linux":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl)
            pass
