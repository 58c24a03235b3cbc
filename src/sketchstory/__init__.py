"""sketchstory: consistent comics from sketches with SD1.5, Canny ControlNet and MAGA.

The public Python API (docs/api.md), imported on first use so that ``import sketchstory`` stays light:

- :mod:`sketchstory.maga`: ``maga.attach(pipe, memory=..., start_layer=..., start_step=...)``, MAGA on a
  stock diffusers pipeline, and ``maga.StoryMemory``, the story it renders;
- :mod:`sketchstory.story`: ``load_story``, ``Story``, the story document.

``from sketchstory import maga`` imports the submodule; ``__all__`` names it for ``import *``.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "maga", "story"]
