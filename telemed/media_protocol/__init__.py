"""The media protocol: what a signaling node and a media worker share, and
nothing of how either works. Redis keys and lifetimes (:mod:`.keys`), the job
and control schemas (:mod:`.jobs`), Socket.IO rooms (:mod:`.rooms`), and the
node's client (:mod:`.client`). It imports no media code, so a node never
loads aiortc, PyAV, OpenCV or Vosk.
"""

from __future__ import annotations

from telemed.media_protocol.client import MediaClient, error_from_dict
from telemed.media_protocol.jobs import KINDS, MAX_SDP, ROLES, ControlRequest, Job, error_reply, ok_reply
from telemed.media_protocol.rooms import NAMESPACE, room_captions, room_leg, room_media

__all__ = [
    "KINDS", "MAX_SDP", "NAMESPACE", "ROLES", "ControlRequest", "Job", "MediaClient", "error_from_dict", "error_reply",
    "ok_reply", "room_captions", "room_leg", "room_media",
]
