"""Stage 2's components kept loaded from run to run, by (model, ControlNet)."""

from __future__ import annotations

from sketchstory.models.components import Components
from sketchstory.models.device import free_memory
from sketchstory.models.loading import load
from sketchstory.models.specs import resolve_spec
from sketchstory.story import Settings


class ComponentCache:
    """Loads each (model, ControlNet) once; at most ``most`` at a time (None: no limit), the oldest going
    first, before the next one loads (models are large). ``preloaded`` serves every request instead."""

    def __init__(self, device: str | None = None, *, most: int | None = None,
                 preloaded: Components | None = None, dtype: str | None = None) -> None:
        self.device, self.most, self.preloaded, self.dtype = device, most, preloaded, dtype
        self._loaded: dict[tuple[str, str | None], Components] = {}

    def __call__(self, settings: Settings) -> Components:
        """The settings' model; ``ModelLoadError`` says what to do if it cannot be loaded."""
        if self.preloaded is not None:
            return self.preloaded
        key = (settings.model, settings.controlnet)
        if key not in self._loaded:
            while self.most is not None and len(self._loaded) >= self.most:
                del self._loaded[next(iter(self._loaded))]
            self._loaded[key] = load(resolve_spec(*key), self.device, dtype_name=self.dtype)
        return self._loaded[key]

    def release(self) -> None:
        """Let every loaded model go, and give their memory back."""
        self._loaded.clear()
        free_memory()
