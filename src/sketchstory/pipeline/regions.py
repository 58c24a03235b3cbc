"""Where each character is in each panel, at latent resolution: the regions of character-routed MAGA.

A placed character's region is its box or its mask picture (white on black, scaled to the panel);
an unplaced one takes the sketch's subject region (the whole panel without a sketch), so a lone
character needs no box. A box says *who* is where, the sketch says which pixels are drawn: a box
is narrowed to the sketch's subject region inside it (when that is not empty), so the scenery a
box takes in neither reads nor lends the character's memory. The background is what no character
covers. A story routes MAGA by character once a panel places a character or names a setting (story
format version 2, docs/maga.md "Characters"); other stories keep plain MAGA.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from sketchstory.attention.policy import MemoryPolicy
from sketchstory.attention.routing import Routing
from sketchstory.attention.tracks import BACKGROUND, CHARACTER, character_tracks
from sketchstory.pipeline.conditions import Mask, PanelInputs
from sketchstory.story import Story

LatentRegion = np.ndarray | None  # (h, w) bool; None: the whole panel


def routed(story: Story) -> bool:
    return story.settings.maga.enabled and story.version >= 2


def box_region(box: tuple[float, float, float, float], latent_hw: tuple[int, int]) -> np.ndarray:
    """A box (fractions of the panel) as the latent pixels it touches."""
    h, w = latent_hw
    x0, y0, x1, y1 = box
    region = np.zeros((h, w), dtype=bool)
    region[math.floor(y0 * h) : max(math.ceil(y1 * h), math.floor(y0 * h) + 1),
           math.floor(x0 * w) : max(math.ceil(x1 * w), math.floor(x0 * w) + 1)] = True
    return region


def mask_region(picture: Image.Image, latent_hw: tuple[int, int]) -> np.ndarray:
    """A mask picture scaled to the latent, each latent pixel in the region when its area mostly is."""
    h, w = latent_hw
    scaled = np.asarray(picture.resize((w, h), Image.Resampling.BOX))
    region = scaled > 127
    return region if region.any() else scaled > 0  # a region thinner than a latent pixel still counts


def panel_regions(story: Story, index: int, subject: np.ndarray | None, masks: dict[str, Mask],
                  latent_hw: tuple[int, int]) -> tuple[dict[str, LatentRegion], LatentRegion]:
    """(each character's region, the background's) in panel ``index``."""
    characters: dict[str, LatentRegion] = {}
    for placement in story.placements(index):
        if placement.box is not None:
            box = box_region(placement.box, latent_hw)
            drawn = box & subject if subject is not None else box
            characters[placement.name] = drawn if drawn.any() else box
        elif placement.mask is not None:
            characters[placement.name] = mask_region(masks[placement.mask][1], latent_hw)
        else:
            characters[placement.name] = subject if subject is not None and subject.any() else None
    if not characters:
        return characters, None
    if any(r is None for r in characters.values()):
        return characters, np.zeros(latent_hw, dtype=bool)
    return characters, ~np.logical_or.reduce(list(characters.values()))


def story_routing(story: Story, policy: MemoryPolicy, inputs: list[PanelInputs], masks: dict[str, Mask],
                  latent_hw: tuple[int, int], device: torch.device | str = "cpu",
                  references: dict[str, int] | None = None) -> Routing:
    """The story's tracks (the memory policy along each) and every panel's regions on them;
    ``references``: the memory panel of each character's reference picture, the whole picture its region."""
    present = [[c.name for c in story.panel_characters(n)] for n in range(len(story.panels))]
    settings = [p.setting for p in story.panels] if story.settings.maga.background == "setting" else None
    tracks = character_tracks(policy, present, settings, references)
    index = {key: t for t, key in enumerate(tracks.keys)}
    regions: dict[int, dict[int, torch.Tensor | None]] = {
        panel: {index[(CHARACTER, name)]: None} for name, panel in (references or {}).items()}
    for n in range(len(story.panels)):
        characters, background = panel_regions(story, n, inputs[n].mask, masks, latent_hw)
        own = {index[(CHARACTER, name)]: r for name, r in characters.items()}
        if settings is not None:
            own[index[(BACKGROUND, settings[n])]] = background
        regions[n] = {t: None if r is None else torch.from_numpy(r).to(device) for t, r in own.items()}
    return Routing(tracks, regions, device)
