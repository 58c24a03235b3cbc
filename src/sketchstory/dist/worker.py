"""The batch worker: renders whole stories with ``generate``, each model loaded once per worker."""

from __future__ import annotations

from pathlib import Path

from sketchstory.dist.inputs import StoryTask
from sketchstory.dist.pool import Worker


class StoryWorker(Worker):
    """Renders stories into ``OUT/<name>/`` (``generate``'s layout), resuming what an earlier attempt left."""

    def __init__(self, out: Path, library: Path | None, keep_memory: bool, device: str, threads: int | None) -> None:
        super().__init__(threads)
        from sketchstory.models import ComponentCache
        from sketchstory.pipeline.runner import RunOptions

        self.out = Path(out)
        self.options = RunOptions(resume=True, keep_memory=keep_memory, device=device, library=library, progress=False)
        # Keyed by (model, ControlNet): a worker loads each once, whichever of its stories needs it first.
        self.models = ComponentCache(device)

    def render(self, task: StoryTask) -> None:
        # generate_run also resets CUDA's peak-memory counter, so each run.json reports its own story's peak.
        from sketchstory.eval.baselines import generate_run

        if task.story is None:
            raise ValueError(f"{task.source}: {task.problem}")
        generate_run(task.story, task.folder, self.out / task.name, self.options, self.models(task.story.settings))
