"""The settings a story leaves unsaid follow the model it names.

A story without settings on the demo model gets its 64 px, 20 steps and MAGA start, not the
SD1.5-sized defaults of the story format; what the story gives (its file, a flag, the web form)
always wins. A story that places its characters (routed MAGA) gets the model's routed MAGA settings.
Every run goes through here, so the command line, the web UI, batches and studies agree.
"""

from __future__ import annotations

from sketchstory.models.specs import native_settings
from sketchstory.pipeline.regions import routed
from sketchstory.story import Story


def follow_model(story: Story) -> Story:
    """The story with its model's native settings wherever it does not give its own."""
    given = story.explicit_settings()
    native = {k: v for k, v in native_settings(story.settings.model, routed(story)).items() if k not in given}
    return story.with_settings(native, "the model's native settings") if native else story
