"""The batch worker: renders whole stories with ``generate``, each model loaded once per worker."""

from __future__ import annotations

from pathlib import Path

from sketchstory.batch.inputs import StoryTask
from sketchstory.batch.pool import Worker


class StoryWorker(Worker):
    """Renders stories into ``OUT/<name>/`` (``generate``'s layout), resuming what an earlier attempt left."""

    def __init__(self, out: Path, library: Path | None, keep_memory: bool, force: bool, device: str,
                 threads: int | None) -> None:
        super().__init__(threads)
        from sketchstory.models import ComponentCache
        from sketchstory.pipeline.runner import RunOptions

        self.out = Path(out)
        self.options = RunOptions(resume=True, keep_memory=keep_memory, device=device, library=library, progress=False,
                                  force=force)
        # Keyed by (model, ControlNet): a worker loads each once, whichever of its stories needs it first.
        self.models = ComponentCache(device)

    def render(self, task: StoryTask) -> None:
        from sketchstory.pipeline.runner import generate

        if task.story is None:
            raise ValueError(f"{task.source}: {task.problem}")
        generate(task.story, task.folder, self.out / task.name, self.options, self.models(task.story.settings))
