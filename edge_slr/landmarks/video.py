"""Decode RGB frames from a video file or a folder of frame images with OpenCV.

A frame source is opened once (:func:`open_frames`), which checks that it exists and looks
decodable, and then yields ``(H, W, 3)`` uint8 RGB frames one at a time, so hours of video never
sit in memory. Accepted inputs:

- a video file OpenCV can read (``.mp4``, ``.avi``, ``.mkv``, ...); fps comes from the container;
- a folder of ``.png``/``.jpg`` frames in natural order (``img2.png`` before ``img10.png``),
  including the PHOENIX release layout where the frames of ``NAME`` sit in ``NAME/1/``;
- a glob such as ``NAME/1/*.png`` (as written in the PHOENIX annotation files).

Frame folders carry no frame rate, so ``fps`` must be given or :data:`DEFAULT_FOLDER_FPS`
(25, the PHOENIX recording rate) is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import FormatError, InputError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FOLDER_FPS = 25.0
MAX_FPS = 1000.0  # above this, whole-millisecond timestamps would stop increasing


@dataclass(frozen=True)
class FrameSource:
    """A video file or an ordered list of frame images, ready to be decoded."""

    path: Path
    kind: str  # "video" or "frames"
    fps: float
    frame_paths: tuple[Path, ...] = ()  # the images of a frame folder, in order
    num_frames_hint: int | None = None  # what the container claims; decoding decides

    def frames(self) -> Iterator[np.ndarray]:
        """Decoded RGB frames, ``(H, W, 3)`` uint8, in order; FormatError if none decode."""
        if self.kind == "video":
            yield from _video_frames(self.path, self.num_frames_hint)
        else:
            for image_path in self.frame_paths:
                yield read_image(image_path)


def open_frames(path: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file, a frame folder or a frame glob for decoding.

    ``fps`` overrides the container's rate (videos) and gives the rate of frame folders.
    InputError when the path does not exist, FormatError when it cannot be decoded.
    """
    path = Path(path)
    if fps is not None:
        _check_fps(fps, "fps")
    if "*" in path.name:
        images = _glob_images(path.parent, path.name)
        return _folder_source(path, images, fps)
    if path.is_dir():
        images = _glob_images(path, "*")
        if not images and (path / "1").is_dir():
            images = _glob_images(path / "1", "*")  # official PHOENIX layout NAME/1/*.png
        return _folder_source(path, images, fps)
    if not path.exists():
        raise InputError(f"video or frame folder not found: {path}")
    return _video_source(path, fps)


def read_image(path: str | Path) -> np.ndarray:
    """One image file as ``(H, W, 3)`` uint8 RGB; FormatError if OpenCV cannot decode it."""
    cv2 = require("cv2", "decoding frame images")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise FormatError(path, "not a readable image (OpenCV could not decode it)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``img2.png`` before ``img10.png``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _glob_images(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"frame folder not found: {folder}")
    images = [p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(images, key=natural_key)


def _folder_source(path: Path, images: list[Path], fps: float | None) -> FrameSource:
    if not images:
        suffixes = "/".join(IMAGE_SUFFIXES)
        raise FormatError(path, f"no frame images ({suffixes}) found (also looked in its 1/)")
    return FrameSource(
        path, "frames", DEFAULT_FOLDER_FPS if fps is None else fps, tuple(images), len(images)
    )


def _video_source(path: Path, fps: float | None) -> FrameSource:
    cv2 = require("cv2", "decoding video")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise FormatError(path, "OpenCV cannot open it as a video (unsupported or corrupt)")
        container_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if fps is None:
        if np.isfinite(container_fps) and 0.0 < container_fps <= MAX_FPS:
            fps = container_fps
        else:
            # Some containers (raw streams, broken headers) carry no rate: say so and go on.
            logger.warning("%s reports fps %r; using %s", path, container_fps, DEFAULT_FOLDER_FPS)
            fps = DEFAULT_FOLDER_FPS
    return FrameSource(path, "video", fps, (), count if count > 0 else None)


def _video_frames(path: Path, expected: int | None) -> Iterator[np.ndarray]:
    cv2 = require("cv2", "decoding video")
    capture = cv2.VideoCapture(str(path))
    decoded = 0
    try:
        if not capture.isOpened():
            raise FormatError(path, "OpenCV cannot open it as a video (unsupported or corrupt)")
        while True:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            decoded += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    if decoded == 0:
        raise FormatError(path, "no frame could be decoded (empty or corrupt video)")
    if expected is not None and decoded < expected:
        # Frame counts in headers are estimates for some containers; a large gap means a
        # truncated file, which is worth a warning but still gives usable frames.
        logger.warning("%s: decoded %d frames, the container announced %d", path, decoded, expected)


def _check_fps(fps: float, name: str) -> None:
    number = isinstance(fps, (int, float)) and not isinstance(fps, bool)
    if not (number and np.isfinite(fps) and 0.0 < fps <= MAX_FPS):
        raise InputError(f"{name} must be a number in (0, {MAX_FPS:g}], got {fps!r}")
