"""Checks on a converted calibration dataset before any update is spent on it (an hour of calibration on data the
converter could barely use is wasted): `calibrate --data <bags>` runs them on the conversion report and refuses,
naming every failed check with its number and threshold, unless told `--accept-unclean`.

The converter's own "clean" is stricter (one tick without a fresh frame makes a report not clean); these checks
are what makes a calibration wasted: too much lost to load (the thresholds below, which a loaded machine must stay
within) and wrong content (the report's `content_problems`: grayscale, black or white frames, NaN or out-of-range
commands, with the converter's thresholds)."""

from __future__ import annotations

from typing import Any

#: most ticks inside episodes that had no fresh frame (or odometry), as a fraction of all control ticks
MAX_TICKS_WITHOUT_OBSERVATION = 0.05
#: most camera frames lost (estimated from the frame stamps), as a fraction of the frames the camera rate owes (a
#: camera at half its configured rate has lost 50 %)
MAX_DROPPED_FRAME_FRACTION = 0.05
#: fewest usable transitions, as a fraction of what the recorder was asked for (recording.json), per recording: the
#: recorder counts with the converter's own rule, so a shortfall means the bag lost data after the recorder saw it
MIN_FRACTION_OF_REQUESTED = 0.9


def failed_checks(report: dict[str, Any], batch_length: int) -> list[str]:
    """The checks of a bags -> dataset conversion report that fail, each as a sentence; [] when the data are usable."""
    failed = list(report.get("content_problems", []))
    for entry in report.get("inputs", []):
        requested, usable = entry.get("transitions_requested"), int(entry.get("transitions", 0))
        if requested and usable < MIN_FRACTION_OF_REQUESTED * requested:
            failed.append(f"{entry['path']}: {usable} usable transitions of the {requested} the recorder was asked for ({usable / requested:.1%}; "
                          f"at least {MIN_FRACTION_OF_REQUESTED:.0%})")
    ticks = sum(int(e["ticks"]["ticks"]) for e in report.get("inputs", []))
    without = sum(int(e["ticks"]["ticks_without_observation"]) for e in report.get("inputs", []))
    if ticks and without / ticks > MAX_TICKS_WITHOUT_OBSERVATION:
        failed.append(f"{without} of {ticks} control ticks ({without / ticks:.1%}) have no fresh camera frame or odometry "
                      f"(at most {MAX_TICKS_WITHOUT_OBSERVATION:.0%})")
    dropped = float(report.get("dropped_fraction", 0.0))
    if dropped > MAX_DROPPED_FRAME_FRACTION:
        failed.append(f"the camera lost {report.get('dropped_frames')} frames ({dropped:.1%}; at most {MAX_DROPPED_FRAME_FRACTION:.0%})")
    mean_length = float(report.get("episode_length", {}).get("mean", 0.0))
    if mean_length < batch_length:
        failed.append(f"the mean episode is {mean_length:.1f} transitions, shorter than one training sequence "
                      f"(batch_length={batch_length})")
    return failed
