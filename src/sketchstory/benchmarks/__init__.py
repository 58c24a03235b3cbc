"""The standard consistent-story benchmarks as sketchstory stories (docs/benchmarks.md). No torch.

- :mod:`.vistorybench`: ViStoryBench's ``NN/story.json`` with its character reference pictures;
- :mod:`.consistory`: ConsiStory+ (1Prompt1Story's YAML of prompt sets);
- :mod:`.folder`: an imported story written as a story folder, atomically.
"""

from sketchstory.benchmarks.consistory import read_consistory
from sketchstory.benchmarks.folder import ImportedStory, write_story_folder
from sketchstory.benchmarks.vistorybench import read_vistorybench

FORMATS = ("vistorybench", "consistory")

__all__ = ["FORMATS", "ImportedStory", "read_consistory", "read_vistorybench", "write_story_folder"]
