"""Where model files come from: an existing folder or file, else the Hugging Face hub (cache first).

Offline (``HF_HUB_OFFLINE=1`` or no network) a model missing from the local cache raises
``ModelLoadError`` saying what to pass instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from sketchstory.errors import ModelLoadError
from sketchstory.models.specs import DEMO_DIR, REGISTRY

# Exactly what either stage loads from a diffusers repo (SDXL's has a second tokenizer and text
# encoder): not the safety checker, the fp16/non-EMA variants or the root checkpoints, which would
# multiply the download (SDXL's repo holds about 10 times what is needed).
PIPELINE_FILES = ["model_index.json", "scheduler/*", "tokenizer*/*", "text_encoder*/config.json",
                  "text_encoder*/model.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                  "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
CONTROLNET_FILES = ["config.json", "diffusion_pytorch_model.safetensors"]


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def explain_load_error(source: str, what: str, err: Exception | None) -> ModelLoadError:
    if Path(source).exists():
        return ModelLoadError(f"could not load the {what} from {source}: {err}. Check that it is a diffusers "
                              "folder (with model_index.json or the component subfolders) or a .safetensors checkpoint.")
    reason = "HF_HUB_OFFLINE is set" if err is None else f"no network: {type(err).__name__}"
    return ModelLoadError(
        f"the {what} '{source}' is not in the local Hugging Face cache and cannot be downloaded here "
        f"({reason}). On a machine with internet run "
        f"`huggingface-cli download {source} --local-dir DIR`, copy DIR here, and pass it with "
        f"{'--controlnet' if what == 'ControlNet' else '--model'} DIR (or use --model demo to try the bundled model)."
    )


def fetch(source: str, what: str = "model", patterns: list[str] | None = None) -> str:
    """A local path for ``source``: itself if it exists, else the hub snapshot (cached or downloaded).

    Checks the hub once with a short timeout before downloading, so a machine without network
    gets the explanation at once instead of after minutes of retries.
    """
    if source == str(DEMO_DIR) and not (DEMO_DIR / "unet").is_dir():
        raise ModelLoadError(f"the demo model's weights are missing from {DEMO_DIR}: reinstall sketchstory, "
                             "or train them with `python -m sketchstory.demo.train`")
    if Path(source).expanduser().exists():
        return str(Path(source).expanduser())
    if source.endswith((".safetensors", ".ckpt")) or source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelLoadError(f"{what} not found: {source} does not exist. Pass an existing folder or file, "
                             f"a hub id (owner/name) or a named model ({', '.join(REGISTRY)}).")
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = patterns or PIPELINE_FILES
    try:
        return snapshot_download(source, allow_patterns=patterns, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if hub_offline():
        raise explain_load_error(source, what, None)
    try:
        HfApi().model_info(source, timeout=10)
    except RepositoryNotFoundError:
        raise ModelLoadError(f"there is no {what} '{source}' on the Hugging Face hub (or it is private): "
                             "check the id, or pass a local folder or .safetensors file") from None
    except Exception as err:  # any network failure: DNS, refused, timeout, proxy
        raise explain_load_error(source, what, err) from None
    return snapshot_download(source, allow_patterns=patterns)
