"""Batch jobs on workers: many stories (``sketchstory batch``) and large library builds, on Ray or here.

- :mod:`.inputs`: the stories of a batch (a folder of story folders, or a JSONL file) as tasks;
- :mod:`.pool`: workers that run one task at a time, on Ray actors or in this process, with retries;
- :mod:`.cluster`: connecting to Ray (or starting it here) and sizing the pool;
- :mod:`.worker`, :mod:`.resume`, :mod:`.stories`: rendering stories with ``generate``, skipping finished ones;
- :mod:`.library`: drawing a library's sketches on workers while this process alone writes the index.

Ray is optional (``pip install 'sketchstory[dist]'``); without it everything runs in this process.
"""
