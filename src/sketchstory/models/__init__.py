"""Every model sketchstory runs, and the one place that resolves, loads, caches and releases them.

- :mod:`.specs`: the named models of stage 2 (SD1.5 + Canny ControlNet) and stage 1 (line art), no torch;
- :mod:`.hub`: a local path for a folder, a file or a hub id, and load errors that say what to do;
- :mod:`.device`: the device and dtype, placing models on them, giving their memory back;
- :mod:`.components`: what stage 2 runs; :mod:`.tiny`: tiny random models of the real classes;
- :mod:`.loading`: stage 2's components; :mod:`.cache`: stage 2's components kept loaded from run to run;
- :mod:`.pipelines`: stage 1's text-to-image pipeline (imported from there: diffusers' pipelines are slow to
  import and stage 2 does not need them).

Other packages import from here (stage 1 from :mod:`.pipelines`); the modules import each other directly.
"""

from sketchstory.errors import ModelLoadError
from sketchstory.models.cache import ComponentCache
from sketchstory.models.components import Components
from sketchstory.models.device import available_bytes, default_device, free_memory, place
from sketchstory.models.hub import fetch
from sketchstory.models.loading import load
from sketchstory.models.specs import (
    DEMO_DIR,
    LINEART_NEGATIVE,
    REGISTRY,
    SKETCH_PREFIX,
    SKETCH_REGISTRY,
    Kind,
    ModelSpec,
    SketchModelSpec,
    default_sketch_model,
    resolve_sketch_model,
    resolve_spec,
)
from sketchstory.models.tiny import tiny_components, tiny_scheduler_config, tiny_vae

__all__ = [
    "DEMO_DIR", "LINEART_NEGATIVE", "REGISTRY", "SKETCH_PREFIX", "SKETCH_REGISTRY", "ComponentCache", "Components",
    "available_bytes",
    "Kind", "ModelLoadError", "ModelSpec", "SketchModelSpec", "default_device", "default_sketch_model", "fetch",
    "free_memory", "load", "place",
    "resolve_sketch_model", "resolve_spec", "tiny_components", "tiny_scheduler_config", "tiny_vae",
]
