"""The driving lane of a Duckietown loop map as one closed curve: arc length, centre offset, heading.

The simulator knows, per tile, the Bezier centre curves of both lanes (`tile["curves"]`). A loop map
(straight and curve tiles only, every tile visited once) has exactly one closed chain of right-lane curves
per driving direction; `LaneTrack` follows the chain whose turns match the map's tile kinds (curve_left
tiles turn left), so the lane and its direction are those the map author intended.

Frames and signs (the simulator's "weird" frame): positions (x, z) on the floor, heading angle `a` with
direction vector (cos a, -sin a); a grows when the robot turns left. `locate` returns
    s        arc length along the lane from the chain start, in [0, length)
    offset   signed distance from the lane centre, m, positive = left of the centre (towards the centre line)
    heading  robot heading minus lane direction, rad in (-pi, pi], positive = pointing left
The simulator's own `get_lane_pos2` has the opposite signs (dist < 0 = left), and picks the lane by the
robot's heading; `locate` always measures against the intended lane, also when the robot faces backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from redraw_common.errors import RedrawInputError

LOOP_TILE_KINDS = ("straight", "curve_left", "curve_right")
SAMPLES_PER_TILE = 64


class TrackError(RedrawInputError):
    """The map is not a simple loop (intersections, dead ends) or a pose is off the track."""


@dataclass(frozen=True)
class LanePose:
    s: float           # arc length along the lane, m, in [0, track length)
    offset: float      # m, positive = left of the lane centre
    heading: float     # rad, positive = pointing left of the lane direction
    tile: tuple[int, int]
    point: tuple[float, float]   # closest point on the lane centre (x, z)
    lane_angle: float  # direction of the lane at that point (simulator angle convention)


def wrap_angle(a: float) -> float:
    """Angle wrapped into (-pi, pi]."""
    return math.atan2(math.sin(a), math.cos(a))


def _angle_of(vx: float, vz: float) -> float:
    return math.atan2(-vz, vx)


def _bezier(cps: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    return (1 - t) ** 3 * cps[0] + 3 * (1 - t) ** 2 * t * cps[1] + 3 * (1 - t) * t**2 * cps[2] + t**3 * cps[3]


class _Segment:
    """One tile's lane curve, sampled densely (polyline) with cumulative arc length."""

    def __init__(self, tile: tuple[int, int], kind: str, cps: np.ndarray, s0: float):
        self.tile, self.kind = tile, kind
        self.cps = cps[:, [0, 2]].astype(float)        # (4, 2): x, z
        self.pts = _bezier(self.cps, np.linspace(0.0, 1.0, SAMPLES_PER_TILE))
        seg = np.diff(self.pts, axis=0)
        self.seg_len = np.linalg.norm(seg, axis=1)
        self.seg_dir = seg / self.seg_len[:, None]
        self.cum = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.cum[-1])
        self.s0 = s0
        d0, d1 = self.cps[1] - self.cps[0], self.cps[3] - self.cps[2]
        self.turn = wrap_angle(_angle_of(*d1) - _angle_of(*d0))   # > 0: left turn

    def project(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Closest point of the polyline to p: (arc length within the tile, point, unit direction)."""
        rel = p - self.pts[:-1]
        u = np.clip(np.einsum("ij,ij->i", rel, self.seg_dir), 0.0, self.seg_len)
        closest = self.pts[:-1] + u[:, None] * self.seg_dir
        k = int(np.argmin(np.sum((closest - p) ** 2, axis=1)))
        return float(self.cum[k] + u[k]), closest[k], self.seg_dir[k]


class LaneTrack:
    """The intended lane of a loop map. Build with `LaneTrack.from_simulator(sim)`."""

    def __init__(self, tiles: dict[tuple[int, int], tuple[str, np.ndarray]], tile_size: float):
        """tiles: {(i, j): (kind, curves (K, 4, 3))} of every drivable tile."""
        if not tiles:
            raise TrackError("the map has no drivable tiles")
        bad = sorted({kind for kind, _ in tiles.values() if kind not in LOOP_TILE_KINDS})
        if bad:
            raise TrackError(f"lane following needs a loop map of {LOOP_TILE_KINDS} tiles only, found {bad} tiles")
        self.tile_size = float(tile_size)
        start = min(tiles)
        chains = [self._chain(tiles, start, c) for c in range(len(tiles[start][1]))]
        chains = [c for c in chains if c is not None]
        if not chains:
            raise TrackError(f"the drivable tiles do not form one closed loop through all {len(tiles)} tiles")
        self.segments = max(chains, key=self._direction_score)
        self.by_tile = {seg.tile: seg for seg in self.segments}
        self.length = float(sum(seg.length for seg in self.segments))

    @classmethod
    def from_simulator(cls, sim: Any) -> LaneTrack:
        tiles = {tuple(t["coords"]): (t["kind"], np.asarray(t["curves"])) for t in sim.drivable_tiles}
        return cls(tiles, sim.road_tile_size)

    def _chain(self, tiles, start, curve_index) -> list[_Segment] | None:
        segments: list[_Segment] = []
        tile, c = start, curve_index
        s0 = 0.0
        for _ in range(len(tiles) + 1):
            kind, curves = tiles[tile]
            seg = _Segment(tile, kind, curves[c], s0)
            segments.append(seg)
            s0 += seg.length
            end, direction = seg.cps[3], seg.cps[3] - seg.cps[2]
            ahead = end + 0.01 * self.tile_size * direction / np.linalg.norm(direction)
            nxt = (math.floor(ahead[0] / self.tile_size), math.floor(ahead[1] / self.tile_size))
            if nxt not in tiles:
                return None
            starts = np.asarray(tiles[nxt][1])[:, 0, [0, 2]]
            dist = np.linalg.norm(starts - end, axis=1)
            c_next = int(np.argmin(dist))
            if dist[c_next] > 0.02 * self.tile_size:
                return None
            if (nxt, c_next) == (start, curve_index):
                return segments if len(segments) == len(tiles) else None
            if any(seg.tile == nxt for seg in segments):
                return None
            tile, c = nxt, c_next
        return None

    @staticmethod
    def _direction_score(segments: list[_Segment]) -> int:
        score = 0
        for seg in segments:
            if seg.kind == "curve_left":
                score += 1 if seg.turn > 0 else -1
            elif seg.kind == "curve_right":
                score += 1 if seg.turn < 0 else -1
        return score

    def tile_of(self, x: float, z: float) -> tuple[int, int]:
        return (math.floor(x / self.tile_size), math.floor(z / self.tile_size))

    def locate(self, x: float, z: float, angle: float) -> LanePose | None:
        """Lane pose of the robot at (x, z) with heading `angle`; None when it is not on a lane tile."""
        seg = self.by_tile.get(self.tile_of(x, z))
        if seg is None:
            return None
        p = np.array([x, z], float)
        s_local, point, d = seg.project(p)
        rel = p - point
        offset = float(rel[0] * d[1] - rel[1] * d[0])     # dot(rel, left), left = (dz, -dx)
        lane_angle = _angle_of(d[0], d[1])
        return LanePose(
            s=(seg.s0 + s_local) % self.length,
            offset=offset,
            heading=wrap_angle(angle - lane_angle),
            tile=seg.tile,
            point=(float(point[0]), float(point[1])),
            lane_angle=lane_angle,
        )

    def pose_at(self, s: float, offset: float = 0.0, heading: float = 0.0) -> tuple[float, float, float]:
        """(x, z, angle) of a robot at arc length s, `offset` left of the centre, `heading` left of the lane."""
        s = float(s) % self.length
        for seg in self.segments:
            if s <= seg.s0 + seg.length:
                break
        local = min(max(s - seg.s0, 0.0), seg.length)
        k = min(int(np.searchsorted(seg.cum, local, side="right")) - 1, len(seg.seg_len) - 1)
        k = max(k, 0)
        d = seg.seg_dir[k]
        point = seg.pts[k] + (local - seg.cum[k]) * d
        left = np.array([d[1], -d[0]])
        pos = point + offset * left
        return float(pos[0]), float(pos[1]), wrap_angle(_angle_of(d[0], d[1]) + heading)

    def progress(self, s_prev: float, s_new: float) -> float:
        """Signed arc length travelled from s_prev to s_new (the shorter way round the loop)."""
        ds = (s_new - s_prev) % self.length
        return ds - self.length if ds > self.length / 2 else ds
