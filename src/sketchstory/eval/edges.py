"""Sketch fidelity: how well the edges of a generated panel follow the edges of its sketch.

Both edge maps come from Canny; the sketch side is the condition the ControlNet was given. An
edge pixel counts as matched when the other map has an edge within ``tolerance`` pixels (the
boundary F-measure of contour benchmarks); chamfer distance is the symmetric mean distance from
each map's edge pixels to the other map's nearest edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# Contour benchmarks (BSDS) match within 0.75 % of the diagonal; sketches are looser guides than
# ground-truth contours, so we allow 1 %, and never less than one pixel.
TOLERANCE_FRACTION = 0.01


@dataclass(frozen=True)
class EdgeScores:
    precision: float  # output edges near a sketch edge
    recall: float  # sketch edges near an output edge
    f1: float
    chamfer_px: float  # symmetric mean distance between the edge sets, in pixels

    def as_metrics(self) -> dict[str, float]:
        return {"edge_precision": self.precision, "edge_recall": self.recall, "edge_f1": self.f1,
                "chamfer_px": self.chamfer_px}


def edge_map(image: Image.Image, low: int = 100, high: int = 200) -> np.ndarray:
    """Boolean Canny edges of an image (grey levels), with the ControlNet annotator's thresholds."""
    return cv2.Canny(np.asarray(image.convert("L")), low, high) > 0


def default_tolerance(shape: tuple[int, ...]) -> float:
    return max(1.0, TOLERANCE_FRACTION * math.hypot(shape[0], shape[1]))


def distance_to(edges: np.ndarray) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest edge pixel (infinite without edges)."""
    if not edges.any():
        return np.full(edges.shape, np.inf, np.float32)
    # distanceTransform measures the distance to the nearest zero pixel, so edges must be zero.
    return cv2.distanceTransform(np.where(edges, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def edge_agreement(output: np.ndarray, reference: np.ndarray, tolerance: float | None = None) -> EdgeScores:
    """Precision, recall, F1 within ``tolerance`` pixels and chamfer distance of two edge maps."""
    if output.shape != reference.shape:
        raise ValueError(f"edge maps differ in size: {output.shape} vs {reference.shape}")
    tol = default_tolerance(output.shape) if tolerance is None else tolerance
    diagonal = math.hypot(*output.shape)
    to_ref, to_out = distance_to(reference), distance_to(output)
    # A missing edge set is as far away as anything can be: the image diagonal.
    d_out = np.minimum(to_ref[output], diagonal)
    d_ref = np.minimum(to_out[reference], diagonal)
    precision = float((d_out <= tol).mean()) if d_out.size else 0.0
    recall = float((d_ref <= tol).mean()) if d_ref.size else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean_out = float(d_out.mean()) if d_out.size else diagonal
    mean_ref = float(d_ref.mean()) if d_ref.size else diagonal
    return EdgeScores(precision, recall, f1, 0.5 * (mean_out + mean_ref))


def sketch_fidelity(output: Image.Image, canny: Image.Image, tolerance: float | None = None,
                    low: int = 100, high: int = 200) -> EdgeScores:
    """Edge agreement of a generated panel with its Canny condition (white edges on black).

    The panel is resized to the condition's size first, so systems rendering at other sizes are
    measured on the same grid.
    """
    if output.size != canny.size:
        output = output.resize(canny.size, Image.Resampling.BICUBIC)
    return edge_agreement(edge_map(output, low, high), np.asarray(canny.convert("L")) > 127, tolerance)
