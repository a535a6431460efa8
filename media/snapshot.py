"""Snapshots: one VP8 key frame decoded into a JPEG for the chart, with the
figures a doctor needs to decide whether to retake it.

Only the requested key frame is decoded (a fresh decoder per snapshot: a key
frame needs no history), so a leg costs no decoding between snapshots.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from telemed.chart import atomic_write, snapshot_name

logger = logging.getLogger(__name__)

#: JPEG quality of chart snapshots (clinical images: keep detail).
JPEG_QUALITY = 92


class SnapshotError(Exception):
    """The key frame could not be decoded or the JPEG written."""


@dataclass(frozen=True)
class Snapshot:
    """A JPEG written into the chart's ``snapshots/`` folder."""

    id: str
    """Random id; the file is ``snapshots/<id>.jpg``."""

    file: str
    """The chart-relative name (:func:`telemed.chart.snapshot_name`)."""

    path: Path
    """Where the JPEG is."""

    sharpness: float
    """Variance of the Laplacian of the luma: low means blurred (compare shots
    of the same scene; around 100 is a usual "too blurred" line at 640x480)."""

    brightness: float
    """Mean luma, 0-255: low means too dark."""

    width: int
    height: int

    taken_at: float
    """Wall time the key frame arrived."""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "file": self.file,
            "sharpness": round(self.sharpness, 2),
            "brightness": round(self.brightness, 2),
            "width": self.width,
            "height": self.height,
            "taken_at": self.taken_at,
        }


def decode_keyframe(data: bytes) -> NDArray[np.uint8]:
    """Decode one VP8 key frame into a BGR image."""
    codec = av.CodecContext.create("vp8", "r")
    try:
        frames = codec.decode(av.Packet(data))
        frames += codec.decode(None)
    except av.FFmpegError as exc:
        raise SnapshotError(f"the key frame did not decode: {exc}") from exc
    if not frames:
        raise SnapshotError("the key frame decoded to nothing")
    image = frames[0].to_ndarray(format="bgr24")
    return np.asarray(image, dtype=np.uint8)


def measure(image: NDArray[np.uint8]) -> tuple[float, float]:
    """(sharpness, brightness) of a BGR image."""
    luma = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    sharpness = float(cv2.Laplacian(luma, cv2.CV_64F).var())
    return sharpness, float(luma.mean())


def write_snapshot(folder: Path, keyframe: bytes, taken_at: float | None = None) -> Snapshot:
    """Decode ``keyframe``, write ``folder/snapshots/<id>.jpg`` atomically and
    measure it. Blocking (decode + JPEG ~ 10 ms at 640x480): run it in a thread."""
    image = decode_keyframe(keyframe)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SnapshotError("JPEG encoding failed")
    snap_id = uuid.uuid4().hex[:16]
    file = snapshot_name(snap_id)
    path = folder / file
    atomic_write(path, jpeg.tobytes())
    sharpness, brightness = measure(image)
    height, width = image.shape[:2]
    return Snapshot(snap_id, file, path, sharpness, brightness, width, height, time.time() if taken_at is None else taken_at)
