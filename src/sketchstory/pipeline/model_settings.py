"""The settings a story leaves unsaid follow the model it names.

A story without settings on the demo model gets its 64 px, 20 steps and MAGA start, not the
SD1.5-sized defaults of the story format; what the story gives (its file, a flag, the web form)
always wins. A story that places its characters (routed MAGA) gets the model's routed MAGA settings.
Every run goes through here, so the command line, the web UI, batches and studies agree.
"""

from __future__ import annotations

from typing import Any

from sketchstory.models.specs import native_settings
from sketchstory.pipeline.regions import routed
from sketchstory.story import Settings, Story


def follow_model(story: Story) -> Story:
    """The story with its model's native settings wherever it does not give its own."""
    given = story.explicit_settings()
    native = {k: v for k, v in native_settings(story.settings.model, routed(story)).items() if k not in given}
    return story.with_settings(native, "the model's native settings") if native else story


def rerouted(before: Story, after: Story) -> dict[str, Any]:
    """When an edit starts (or stops) routing MAGA by character, as placing the first character does: the
    model's settings for the new routing, for those of ``after``'s settings still at the old routing's native
    values (the web UI writes its model's values into the story; this keeps them following the model)."""
    was, now = routed(before), routed(after)
    if was == now:
        return {}
    model = after.settings.model
    return still_native(after.settings, native_settings(model, was), native_settings(model, now))


def still_native(settings: Settings, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The ``new`` native values of the settings that are still at their ``old`` native values and differ
    (when the model or its routing changes, what the user set stays)."""
    return {k: v for k, v in new.items() if k in old and settings.value(k) == old[k] != v}
