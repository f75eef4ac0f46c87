"""Control ticks and episodes of one recording (redraw_training.bags, steps 2-4): ticks locked to the driver's own
commands at the control rate, each tick's freshest usable frame (and odometry), the cuts into episodes, and the
camera drops estimated from the frame stamps; then the second pass, which decodes and preprocesses only the frames
the episodes use.
"""


from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from redraw_common.alignment import EVENT_END, TickLocker
from redraw_common.errors import BagError, PreprocessError
from redraw_common.preprocessing import PreprocessConfig, decode_for, preprocess

from .bagread import READ_ERRORS, TERMINAL_REASONS, Source, Streams, Typestore, iter_part

# ---------------------------------------------------------------------------------------------------
# Ticks and episodes
# ---------------------------------------------------------------------------------------------------

@dataclass
class Ticks:
    time: np.ndarray       # (K,) int64 ns
    action: np.ndarray     # (K, 2) float32
    held: np.ndarray       # (K,) bool: no command near this tick, the previous one held
    segment: np.ndarray    # (K,) int: a new segment starts after every gap longer than max_gap


def control_ticks(cmd_stamp: np.ndarray, cmd_action: np.ndarray, control_hz: float, max_gap: float) -> Ticks:
    """Phase-locked control ticks over a recording's command stream (redraw_common.alignment's rule, the one the
    recorder counts with online)."""
    locker = TickLocker(control_hz, max_gap)
    ticks = [tick for stamp in cmd_stamp for tick in locker.push(int(stamp))] + locker.finish()
    return Ticks(np.asarray([t.time for t in ticks], np.int64),
                 np.asarray(cmd_action, np.float32).reshape(-1, 2)[[t.command for t in ticks]],
                 np.asarray([t.held for t in ticks], bool), np.asarray([t.segment for t in ticks], np.int64))


@dataclass(frozen=True)
class Plan:
    """Which frame each kept tick uses, and where episodes start and end."""

    episodes: list[tuple[int, int, bool]]   # (first tick, end tick exclusive, terminal) into the tick arrays
    frame_of_tick: np.ndarray                # (K,) index into the stream's frames, -1 = no usable frame
    stats: dict[str, int]
    odometry_of_tick: np.ndarray | None = None  # (K,) index into the odometry stream, -1 = none fresh; None = not needed


def plan_episodes(streams: Streams, ticks: Ticks, max_frame_age: float, min_length: int, max_odometry_age: float = 0.2) -> Plan:
    age_ns = int(max_frame_age * 1e9)
    k = len(ticks.time)
    idx = np.searchsorted(streams.frame_stamp, ticks.time, side="right") - 1
    frame = np.where(idx >= 0, idx, -1)
    age = np.where(frame >= 0, ticks.time - streams.frame_stamp[np.maximum(frame, 0)], np.iinfo(np.int64).max)
    stale = (frame >= 0) & (age > age_ns)
    missing = frame < 0
    frame = np.where(stale | missing, -1, frame)
    odom = None
    if streams.odometry is not None:
        # the latest odometry stamped at or before the frame (not the tick): what the robot measured when it saw it
        frame_time = streams.frame_stamp[np.maximum(frame, 0)]
        oidx = np.searchsorted(streams.odometry.stamp, frame_time, side="right") - 1
        oage = np.where(oidx >= 0, frame_time - streams.odometry.stamp[np.maximum(oidx, 0)], np.iinfo(np.int64).max)
        odom_missing = (frame >= 0) & (oidx < 0)
        odom_stale = (frame >= 0) & (oidx >= 0) & (oage > int(max_odometry_age * 1e9))
        odom = np.where((frame >= 0) & ~odom_missing & ~odom_stale, oidx, -1)

    # episode boundaries from events: a START or END at time e starts a new episode at the first tick >= e;
    # ticks after an END and before the next START are outside any episode
    boundary = np.zeros(k, bool)
    outside = np.zeros(k, bool)
    terminal_at = {}  # tick index where an episode ends terminally (exclusive end)
    ends = [(s, r) for s, e, r in streams.events if e == EVENT_END]
    for s, e, r in streams.events:
        i = int(np.searchsorted(ticks.time, s, side="left"))
        if i < k:
            boundary[i] = True
        if e == EVENT_END and r in TERMINAL_REASONS:
            terminal_at[i] = True
    if ends:
        state_end = None
        ev = streams.events
        pos = 0
        for i in range(k):
            while pos < len(ev) and ev[pos][0] <= ticks.time[i]:
                state_end = ev[pos][1] == EVENT_END
                pos += 1
            outside[i] = bool(state_end)
    seg_change = np.r_[False, ticks.segment[1:] != ticks.segment[:-1]]
    usable = (frame >= 0) & ~outside
    if odom is not None:
        usable &= odom >= 0
    episodes = []
    short = short_ticks = 0
    start = None
    cuts = Counter()
    for i in range(k + 1):
        cut = i == k or not usable[i] or boundary[i] or seg_change[i]
        if cut and start is not None:
            length = i - start
            terminal = bool(terminal_at.get(i, False))
            if length >= min_length:
                episodes.append((start, i, terminal))
            else:
                short += 1
                short_ticks += length
            start = None
            if i < k:
                cuts["event" if boundary[i] else "gap" if seg_change[i] else "outside" if outside[i]
                     else "no_frame" if frame[i] < 0 else "no_odometry"] += 1
        if i < k and usable[i] and start is None:
            start = i
    stats = {
        "ticks": int(k),
        "held_ticks": int(ticks.held.sum()),
        "stale_frame_ticks": int((stale & ~outside).sum()),
        "ticks_before_first_frame": int((missing & ~outside).sum()),
        # every tick is exactly one of: in an episode kept, in a short one dropped, between episodes, or without
        # its observation (no frame yet, or no odometry yet / too old for a model with a vector)
        "ticks_without_observation": int((~usable & ~outside).sum()),
        "ticks_between_episodes": int(outside.sum()),
        "short_episodes_dropped": short,
        "ticks_in_short_episodes": short_ticks,
        "cuts_at_events": cuts["event"],
        "cuts_at_gaps": cuts["gap"],
        "cuts_at_unusable_frames": cuts["no_frame"],
    }
    if odom is not None:
        stats.update({
            "stale_odometry_ticks": int((odom_stale & ~outside).sum()),
            "ticks_before_first_odometry": int((odom_missing & ~outside).sum()),
            "cuts_at_odometry_gaps": cuts["no_odometry"],
        })
    return Plan(episodes, frame, stats, odom)


def estimate_camera_drops(stamps: np.ndarray) -> tuple[int, float]:
    """(frames missing, median camera rate in Hz), from the frame stamps: each interval spans round(dt / period)
    camera periods; missing = periods spanned - intervals (a late frame followed by an early one cancels out)."""
    if len(stamps) < 3:
        return 0, 0.0
    dt = np.diff(stamps) / 1e9
    period = float(np.median(dt))
    if period <= 0:
        return 0, 0.0
    return max(0, int(np.round(dt / period).sum()) - len(dt)), 1.0 / period


# ---------------------------------------------------------------------------------------------------
# Second pass: decode and preprocess the frames that are used
# ---------------------------------------------------------------------------------------------------

def frame_content(rgb: np.ndarray) -> str | None:
    """What is wrong with a decoded camera frame's content, if anything: 'grayscale' (the three channels equal: a
    mono camera or a grey JPEG, whose lane mask has no yellow), 'black' (nothing above 10 of 255: a covered lens)
    or 'white' (nothing below 245: an overexposed one); None for an ordinary frame."""
    view = rgb[::4, ::4].astype(np.int16)
    if view.max() <= 10:
        return "black"
    if view.min() >= 245:
        return "white"
    if view.ndim == 3 and view.shape[2] >= 3 and not np.any(view[..., 0] - view[..., 1]) and not np.any(view[..., 1] - view[..., 2]):
        return "grayscale"
    return None


def load_frames(source: Source, streams: Streams, wanted: np.ndarray, types: Typestore, cfg: PreprocessConfig,
                progress: bool) -> tuple[dict[int, np.ndarray], dict[int, tuple[int, int]], dict[int, str], Counter]:
    """Decode and preprocess the frames with stream indices in `wanted`. Returns (obs, frame sizes, problems, counts
    of frames with odd content: frame_content)."""
    want_by_part: dict[int, dict[int, int]] = {}
    for f in np.unique(wanted):
        want_by_part.setdefault(int(streams.frame_part[f]), {})[int(streams.frame_index[f])] = int(f)
    obs: dict[int, np.ndarray] = {}
    sizes: dict[int, tuple[int, int]] = {}
    problems: dict[int, str] = {}
    content: Counter = Counter()
    bar = _progress(len(np.unique(wanted)), f"frames of {source.path.name}", progress)
    for p, part in enumerate(source.parts):
        want = want_by_part.get(p)
        if not want:
            continue
        n = 0
        try:
            for _, msgtype, _, raw in iter_part(part, types, {streams.camera_topic: "camera"}):
                f = want.get(n)
                n += 1
                if f is None:
                    continue
                msg = types.deserialize(raw, msgtype)
                try:
                    # decoded as the policy node decodes it (reduced where the model's size allows)
                    rgb, size = decode_for(bytes(msg.data), cfg)
                    sizes[f] = size or rgb.shape[:2]
                    obs[f] = preprocess(rgb, cfg)
                    odd = frame_content(rgb)
                    if odd:
                        content[odd] += 1
                except PreprocessError as exc:
                    problems[f] = str(exc)
                bar.update(1)
        except BagError:
            raise
        except READ_ERRORS as exc:
            raise BagError(f"{part.path}: cannot read the bag ({type(exc).__name__}: {exc})") from None
    bar.close()
    return obs, sizes, problems, content


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False)
