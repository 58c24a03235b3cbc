"""Evaluation: the thesis's metrics and the field's, baselines, ablation grids, reports.

Modules: ``runs`` (run folders, imported outputs), ``edges`` (sketch fidelity), ``psnr``
(PSNR against a reference folder's mean image), ``learned`` (CLIP-T, CLIP-I, DINO: models loaded
through ``sketchstory.models.fetch``), ``evaluate`` (all metrics over runs), ``report`` and
``plots`` (JSON, Markdown, figures), ``baselines`` and ``ablation`` (runs to compare).
See docs/eval.md for the protocol.
"""
