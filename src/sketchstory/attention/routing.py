"""Character routing: which memory tokens each token of a panel may attend to.

A panel's token belongs to a track (attention.tracks) when it covers any latent pixel of the track's
region there: a character's box, mask or subject, or the background (what no character covers).
Token q of panel n may attend to memory token k of panel m iff some track routes n to m and holds
both; the rest get -inf in the additive SDPA mask over ``[own tokens | memory tokens]``, so routed
MAGA is still one SDPA call. Own tokens are always attended (the panel sees itself whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sketchstory.attention.tracks import Route, Tracks

Region = torch.Tensor | None  # (H, W) bool at latent resolution; None: the whole panel


@dataclass
class Routing:
    tracks: Tracks
    regions: dict[int, dict[int, Region]]  # panel -> its tracks -> region
    device: torch.device | str = "cpu"  # where the token labels and masks are made: the UNet's
    _labels: dict[tuple[int, tuple[int, int]], torch.Tensor] = field(default_factory=dict, repr=False)

    def labels(self, panel: int, grid: tuple[int, int]) -> torch.Tensor:
        """(tokens, tracks) bool: which tracks each of the panel's tokens at this grid belongs to."""
        key = (panel, grid)
        if key not in self._labels:
            tokens = grid[0] * grid[1]
            columns = []
            own = self.regions.get(panel, {})
            for t in range(len(self.tracks.keys)):
                if t not in own:
                    columns.append(torch.zeros(tokens, dtype=torch.bool, device=self.device))
                elif own[t] is None:
                    columns.append(torch.ones(tokens, dtype=torch.bool, device=self.device))
                else:
                    pooled = F.adaptive_max_pool2d(own[t][None, None].float(), grid)[0, 0]
                    columns.append(pooled.flatten().to(self.device) > 0)
            self._labels[key] = torch.stack(columns, dim=1)
        return self._labels[key]


def memory_mask(own: torch.Tensor, source: torch.Tensor, routes: list[Route], bias: float) -> torch.Tensor:
    """(own tokens, source tokens) additive mask for one memory panel: its routes' forgetting term plus
    ``bias`` where a route holds both tokens (the largest term where several do), -inf elsewhere."""
    mask = torch.full((own.shape[0], source.shape[0]), -torch.inf, device=own.device)
    for r in routes:
        allowed = own[:, r.track, None] & source[None, :, r.track]
        mask = torch.where(allowed, mask.clamp(min=r.log_weight), mask)
    return mask + bias
