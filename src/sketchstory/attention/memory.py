"""The MAGA memory bank: keys and values of earlier panels, per layer, step and CFG branch.

Owned by one run (no globals). Entries are stored as (branches, heads, tokens, head_dim) tensors
already reduced to the shared tokens, so a panel's footprint is fixed by the token budget. Panels
that no later panel can read under the memory policy are evicted as soon as that is known.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from sketchstory.atomic import atomic_write

Key = tuple[int, int, int]  # (panel, layer, step)


class MemoryBank:
    def __init__(self, device: torch.device | str | None = None) -> None:
        # Where entries live; None keeps them where they were computed. "cpu" offloads GPU runs.
        self.device = torch.device(device) if device is not None else None
        self._kv: dict[Key, tuple[torch.Tensor, torch.Tensor]] = {}
        self._bytes = 0  # running total, so a put costs O(1) however long the story
        self.peak_bytes = 0

    def put(self, panel: int, layer: int, step: int, key: torch.Tensor, value: torch.Tensor) -> None:
        if self.device is not None:
            key, value = key.to(self.device), value.to(self.device)
        old = self._kv.get((panel, layer, step))
        self._kv[(panel, layer, step)] = (key.detach(), value.detach())
        self._bytes += _size(key, value) - (_size(*old) if old else 0)
        self.peak_bytes = max(self.peak_bytes, self._bytes)

    def get(self, panel: int, layer: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self._kv[(panel, layer, step)]
        except KeyError:
            raise KeyError(
                f"MAGA memory has no entry for panel {panel} (layer {layer}, step {step}): "
                "generate the panels it reads first, or regenerate with the same settings"
            ) from None

    def panels(self) -> set[int]:
        return {p for p, _, _ in self._kv}

    def nbytes(self) -> int:
        return self._bytes

    def drop(self, panels: set[int]) -> None:
        self._kv = {key: kv for key, kv in self._kv.items() if key[0] not in panels}
        self._bytes = sum(_size(k, v) for k, v in self._kv.values())

    # --- persistence, so incremental runs need not recompute earlier panels ----------------

    def save_panel(self, panel: int, path: Path, fingerprint: str) -> Path:
        tensors = {}
        for (p, layer, step), (k, v) in self._kv.items():
            if p == panel:
                tensors[f"{layer}.{step}.k"] = k.contiguous().cpu()
                tensors[f"{layer}.{step}.v"] = v.contiguous().cpu()
        return atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"panel": str(panel), "fingerprint": fingerprint}))

    @staticmethod
    def saved_fingerprint(path: Path) -> str | None:
        """The fingerprint a saved panel memory was written with, or None if unreadable."""
        try:
            with safe_open(str(path), framework="pt") as f:
                return (f.metadata() or {}).get("fingerprint")
        except (OSError, ValueError, SafetensorError):
            return None

    def load_panel(self, panel: int, path: Path, device: torch.device | str, dtype: torch.dtype) -> None:
        tensors = load_file(str(path), device=str(device))
        for name, t in tensors.items():
            layer, step, kind = name.split(".")
            if kind == "k":
                v = tensors[f"{layer}.{step}.v"]
                self.put(panel, int(layer), int(step), t.to(dtype), v.to(dtype))


def _size(key: torch.Tensor, value: torch.Tensor) -> int:
    return key.numel() * key.element_size() + value.numel() * value.element_size()
