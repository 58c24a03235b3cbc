"""The web application (``sketchstory ui``, optional extra ``ui``): the whole workflow in a browser.

Only :mod:`sketchstory.ui.app` imports Gradio; the working-story state, the work folder, the
settings form and the render job are plain Python, unit-tested without a browser.
"""

from pathlib import Path

DEFAULT_WORK = Path("sketchstory-work")  # the work folder, relative to where ``sketchstory ui`` starts
