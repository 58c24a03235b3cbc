"""sketchstory: consistent comics from sketches with SD1.5, Canny ControlNet and MAGA."""

__version__ = "0.1.0"
