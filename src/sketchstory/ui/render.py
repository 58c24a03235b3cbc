"""Stage 2 for the page: one loaded model, one job at a time, progress as a stream of events.

The runner calls back after every denoising step, and after writing each panel, from the thread
that renders; the page needs
a generator it can iterate to update itself. :meth:`Renderer.run` bridges the two with a
queue, and stops the render at the next step when the user presses Stop or leaves.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sketchstory.models import ComponentCache, Components
from sketchstory.pipeline.runner import RunOptions, RunReport, generate
from sketchstory.story import Settings, Story


class Cancelled(Exception):
    """The user stopped the render; every finished panel is kept."""


@dataclass(frozen=True)
class Step:
    panels: tuple[int, ...]  # the panels being denoised together
    done: int  # panel-steps done in this job
    total: int


@dataclass(frozen=True)
class Saved:
    panel: int  # written to the output folder (a chunk's panels one by one, as each is decoded)


class Renderer:
    """Owns the loaded stage-2 model (one at a time: models are large) and runs one job at a time."""

    def __init__(self, device: str | None = None, library: Path | None = None) -> None:
        self.device, self.library = device, library
        self._models = ComponentCache(device, most=1)
        self._cancel = threading.Event()
        self._busy = threading.Lock()

    def components(self, settings: Settings) -> Components:
        """The settings' model, loaded once and reused; ``ModelLoadError`` says what to do if it cannot be."""
        return self._models(settings)

    def cancel(self) -> None:
        self._cancel.set()

    def release(self) -> None:
        """Let the stage-2 model go (before stage 1 loads its own: the two need not share memory)."""
        self._models.release()

    def run(self, story: Story, story_dir: Path, out: Path, *, only: frozenset[int] | None = None,
            keep_memory: bool = True) -> Iterator[Step | Saved | RunReport]:
        """Render (``only=None``: every panel whose inputs changed), yielding a ``Step`` per denoising step,
        a ``Saved`` per panel written, and the runner's ``RunReport`` last.

        Raises ``Cancelled`` when stopped, and whatever the runner raised when it failed.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a render is already running; wait for it or press Stop")
        try:
            self._cancel.clear()
            components = self.components(story.settings)
            events: queue.SimpleQueue[Step | Saved | RunReport | BaseException] = queue.SimpleQueue()

            def on_step(panels: tuple[int, ...], done: int, total: int) -> None:
                if self._cancel.is_set():
                    raise Cancelled()
                events.put(Step(panels, done, total))

            # force: the work folder's out/ is the page's own, also when an older version left it unmarked
            options = RunOptions(resume=only is None, only=only, keep_memory=keep_memory, device=self.device,
                                 progress=False, on_step=on_step, on_panel=lambda n: events.put(Saved(n)),
                                 library=self.library, force=True)

            def work() -> None:
                try:
                    events.put(generate(story, story_dir, out, options, components))
                except BaseException as e:  # handed to the page's thread, which reports it
                    events.put(e)

            worker = threading.Thread(target=work, name="sketchstory-render", daemon=True)
            worker.start()
            try:
                while True:
                    item = events.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if isinstance(item, RunReport):
                        return
            finally:
                self._cancel.set()  # if the page stopped listening, the render stops at its next step
                worker.join()
        finally:
            self._busy.release()


class PanelProgress:
    """Per-panel progress of one job, for the page's live status table."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.steps = [0] * len(story.panels)
        self.saved: set[int] = set()
        self.current: tuple[int, ...] = ()
        self.done = self.total = 0  # panel-steps of the job

    def update(self, step: Step | Saved) -> None:
        if isinstance(step, Saved):
            self.saved.add(step.panel)
            return
        self.current, self.done, self.total = step.panels, step.done, step.total
        for n in step.panels:
            self.steps[n] += 1

    def status(self, n: int) -> str:
        total = self.story.settings.steps
        if n in self.saved:
            return "saved"
        if self.steps[n] == 0:
            return "waiting"
        if self.steps[n] >= total:
            return "denoised"
        return f"denoising, step {self.steps[n]} of {total}"

    def markdown(self, final: dict[int, str] | None = None) -> str:
        """A table of panels and their state; ``final`` overrides it per panel once the job ended."""
        rows = ["| panel | prompt | state |", "|---|---|---|"]
        for n, panel in enumerate(self.story.panels):
            state = (final or {}).get(n) or self.status(n)
            marker = " ◀" if n in self.current and final is None else ""
            prompt = panel.prompt.replace("|", "/")
            rows.append(f"| {n + 1} | {prompt[:50]}{'…' if len(prompt) > 50 else ''} | {state}{marker} |")
        return "\n".join(rows)
