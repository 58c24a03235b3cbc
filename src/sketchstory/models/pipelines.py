"""Loading stage 1's text-to-image pipeline (SD1.5 or SDXL, read from the source), and letting it go.

A loaded model is released (:class:`Stage1Model`) before stage 2 loads its own, so the two never
share memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Self

from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from sketchstory.models.device import default_device, free_memory
from sketchstory.models.hub import explain_load_error, fetch, hub_offline
from sketchstory.models.specs import Kind, SketchModelSpec

Pipeline = StableDiffusionPipeline | StableDiffusionXLPipeline


def detect_kind(path: Path) -> Kind:
    """Whether a local diffusers folder or checkpoint holds an SDXL or an SD1.5-class pipeline."""
    if path.is_file():
        if path.suffix != ".safetensors":
            return "sdxl" if "xl" in path.name.lower() else "sd15"
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                # SDXL checkpoints carry a second text encoder under this prefix.
                keys = f.keys()  # safe_open is not a dict: keys() lists the tensor names
                return "sdxl" if any(k.startswith("conditioner.embedders.1") for k in keys) else "sd15"
        except (OSError, ValueError, RuntimeError) as err:
            raise explain_load_error(str(path), "stage-1 model", err) from None
    try:
        config = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as err:
        raise explain_load_error(str(path), "stage-1 model", err) from None
    return "sdxl" if "XL" in str(config.get("_class_name", "")) else "sd15"


def load_pipeline(spec: SketchModelSpec, device: str | None = None) -> Pipeline:
    """Load a stage-1 text-to-image pipeline onto the device; raise ``ModelLoadError`` on failure."""
    dev, dtype = default_device(device)
    if spec.source == "tiny":
        from sketchstory.models.tiny import tiny_pipeline

        pipe: Pipeline = tiny_pipeline(dev, dtype)
    else:
        path = Path(fetch(spec.source, "stage-1 model"))
        kind = spec.kind or detect_kind(path)
        kw: dict = {"torch_dtype": dtype, "local_files_only": hub_offline()}
        if kind == "sd15":
            cls: type[Pipeline] = StableDiffusionPipeline
            # The safety checker is a second large model, and it blacks out pictures it misjudges.
            kw |= {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        else:
            cls = StableDiffusionXLPipeline
            kw["add_watermarker"] = False  # an invisible watermark is noise to line extraction
        try:
            pipe = cls.from_single_file(str(path), **kw) if path.is_file() else cls.from_pretrained(str(path), **kw)
        except (OSError, ValueError) as err:
            raise explain_load_error(str(path), "stage-1 model", err) from None
        pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class Stage1Model:
    """A loaded stage-1 pipeline that lets go of its weights on ``release`` / leaving ``with``."""

    def __init__(self, spec: SketchModelSpec, device: str | None = None) -> None:
        self.spec = spec
        self._pipe: Pipeline | None = load_pipeline(spec, device)

    @property
    def pipe(self) -> Pipeline:
        if self._pipe is None:
            raise RuntimeError(f"the stage-1 model {self.spec.name} was released; load it again")
        return self._pipe

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        self._pipe = None
        free_memory()
