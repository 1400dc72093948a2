"""`PoseLayout`: what a pose-format header says about drawing, as flat index and color arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pose_format.pose_header import PoseHeader

from hpv.errors import PoseFileError


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class PoseLayout:
    """Points of all components concatenated in header order.

    `limbs` [L, 2] holds global point indices; `limb_component` [L] the component each limb belongs to;
    `colors` [N, 3] is each point's palette color (`palette[i % len(palette)]`, as the visualizer does;
    not clipped, since OpenPose hand colors exceed 255 and are averaged before cv2 saturates them).
    """

    component_names: tuple[str, ...]
    component_offsets: tuple[int, ...]
    point_names: tuple[str, ...]
    limbs: np.ndarray
    limb_component: np.ndarray
    colors: np.ndarray

    @classmethod
    def from_header(cls, header: PoseHeader) -> PoseLayout:
        """Raises `PoseFileError` for a limb or color the renderer could not draw: a limb whose ends are
        not points of its own component, a color that is not three finite channels."""
        names, offsets, points, limbs, limb_component, colors = [], [], [], [], [], []
        offset = 0
        for k, c in enumerate(header.components):
            n = len(c.points)
            names.append(c.name)
            offsets.append(offset)
            points.extend(c.points)
            comp_limbs = _limbs(c.name, c.limbs, n)
            limbs.append(comp_limbs + offset)
            limb_component.append(np.full(len(comp_limbs), k, dtype=np.int64))
            palette = _palette(c.name, c.colors)
            if len(palette) == 0:
                palette = np.zeros((1, 3))
            colors.append(palette[np.arange(n) % len(palette)])
            offset += n
        return cls(
            component_names=tuple(names),
            component_offsets=tuple(offsets),
            point_names=tuple(points),
            limbs=_frozen(np.concatenate(limbs) if limbs else np.zeros((0, 2), np.int64)),
            limb_component=_frozen(np.concatenate(limb_component) if limbs else np.zeros(0, np.int64)),
            colors=_frozen(np.concatenate(colors) if colors else np.zeros((0, 3))),
        )

    @property
    def num_points(self) -> int:
        return len(self.point_names)

    def component_slice(self, name: str) -> slice:
        k = self.component_names.index(name)
        end = self.component_offsets[k + 1] if k + 1 < len(self.component_offsets) else self.num_points
        return slice(self.component_offsets[k], end)

    def index(self, component: str, point: str) -> int:
        """Global index of `point` in `component`."""
        s = self.component_slice(component)
        return s.start + self.point_names[s].index(point)


def _limbs(component: str, limbs, num_points: int) -> np.ndarray:
    """[L, 2] point indices of `component`'s limbs, each within its `num_points` points."""
    try:
        array = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError, OverflowError):
        raise PoseFileError(f"component {component!r}: limbs must be pairs of point indices; "
                            f"got {limbs!r:.200}") from None
    bad = np.flatnonzero(((array < 0) | (array >= num_points)).any(axis=1))
    if len(bad):
        first = int(bad[0])
        raise PoseFileError(
            f"component {component!r}: limb {first} {tuple(int(i) for i in array[first])} joins points outside "
            + (f"its {num_points} points (indices 0..{num_points - 1})" if num_points else "it: it has no points")
            + (f"; {len(bad) - 1} more limbs do too" if len(bad) > 1 else "")
            + ": the header is corrupt"
        )
    return array


def _palette(component: str, colors) -> np.ndarray:
    """[C, 3] RGB colors of `component`, every channel finite."""
    try:
        array = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError, OverflowError):
        raise PoseFileError(f"component {component!r}: colors must be RGB triples; got {colors!r:.200}") from None
    if not np.isfinite(array).all():
        raise PoseFileError(f"component {component!r}: colors must be finite; got {array.tolist()!r:.200}")
    return array
