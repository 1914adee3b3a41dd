"""The canonical landmark layout: MediaPipe Holistic, 543 points per frame.

Every landmark array in edge-slr is stored in this one layout, whatever file or extractor it came
from::

    index   0 ..  32   pose        33 points (PoseLandmark order: NOSE, LEFT_EYE_INNER, ...)
    index  33 .. 500   face       468 points (face-mesh index i is at 33 + i; no iris points)
    index 501 .. 521   left hand   21 points (HandLandmark order: WRIST, THUMB_CMC, ...)
    index 522 .. 542   right hand  21 points

"Left" and "right" are the signer's own sides, as MediaPipe Holistic reports them.

The horizontal-flip permutation ``FLIP_PERMUTATION`` maps the layout onto itself as seen in a
mirrored image: ``flipped[:, i] = original[:, FLIP_PERMUTATION[i]]`` (then ``x -> 1 - x``). Pose
points swap by name (LEFT_* <-> RIGHT_*), the two hands swap wholesale, and face-mesh points swap
with their mirror partner in ``FACE_MIRROR``. That table was derived from real recordings (the
shared ``.pose`` files): on each near-frontal frame, reflect the 468 points about the face's
vertical midline, pair every point with a reflected point by minimum-cost assignment, refine the
pairing after a rigid 3D alignment, and take the per-point majority over 44 frames of 8
recordings (frames of two high-resolution phone recordings did not align and were outvoted; every
other frame agreed, bar one strongly turned face). The result is an involution with 28 points on the midline that maps the lips, the face
oval and every contour edge of MediaPipe's face mesh onto themselves and the left eye onto the
right eye; it also equals the table that pose-format derives from MediaPipe's canonical face model.
tests/test_landmarks_layout.py re-derives it from real frames and checks these properties.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 543
PART_NAMES: tuple[str, ...] = ("pose", "face", "left_hand", "right_hand")
PART_SLICES: dict[str, slice] = {
    "pose": slice(0, 33),
    "face": slice(33, 501),
    "left_hand": slice(501, 522),
    "right_hand": slice(522, 543),
}
PART_SIZES: dict[str, int] = {name: s.stop - s.start for name, s in PART_SLICES.items()}

POSE_LANDMARK_NAMES: tuple[str, ...] = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)  # fmt: skip
HAND_LANDMARK_NAMES: tuple[str, ...] = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)  # fmt: skip

# Pose indices used by the presets and the normalisation.
LEFT_SHOULDER = 11
RIGHT_SHOULDER = 12
# Elbows, wrists, pinky/index/thumb knuckles of both arms: pose 13..22 (the KD-MSLRT arm points).
ARM_POINTS: tuple[int, ...] = tuple(range(13, 23))

# The 40 face-mesh lip points (outer and inner contours, the set of MediaPipe's FACEMESH_LIPS),
# in the order used by the Kaggle GISLR solutions: outer upper, outer lower, inner upper, inner
# lower. These are face-mesh indices; their layout indices are ``FACE_OFFSET + LIP_POINTS``.
LIP_POINTS: tuple[int, ...] = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
    146, 91, 181, 84, 17, 314, 405, 321, 375,
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
)  # fmt: skip
FACE_OFFSET = PART_SLICES["face"].start

# Skeleton edges (part-local indices), as in MediaPipe's *_CONNECTIONS; used to draw and to write
# .pose headers that viewers can render.
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
    (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
    (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
)  # fmt: skip
# Lip contour edges (face-mesh indices): the four lip contours of LIP_POINTS as closed loops.
LIP_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321),
    (321, 375), (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267),
    (267, 269), (269, 270), (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87),
    (87, 14), (14, 317), (317, 402), (402, 318), (318, 324), (324, 308), (78, 191), (191, 80),
    (80, 81), (81, 82), (82, 13), (13, 312), (312, 311), (311, 310), (310, 415), (415, 308),
)  # fmt: skip

# FACE_MIRROR[i] is the face-mesh point that lands where point i is in a horizontally mirrored
# face (derivation in the module docstring).
FACE_MIRROR: tuple[int, ...] = (
    0, 1, 2, 248, 4, 5, 6, 249, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 261,
    262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277,
    278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293,
    294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309,
    310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322, 323, 94, 324,
    325, 326, 327, 328, 329, 330, 331, 332, 333, 334, 335, 336, 337, 338, 339, 340,
    341, 342, 343, 344, 345, 346, 347, 348, 349, 350, 351, 352, 353, 354, 355, 356,
    357, 358, 359, 360, 361, 362, 363, 364, 365, 366, 367, 368, 369, 370, 371, 372,
    373, 374, 375, 376, 377, 378, 379, 151, 152, 380, 381, 382, 383, 384, 385, 386,
    387, 388, 389, 390, 164, 391, 392, 393, 168, 394, 395, 396, 397, 398, 399, 175,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 195, 419, 197, 420, 199, 200, 421, 422, 423, 424, 425, 426, 427,
    428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438, 439, 440, 441, 442, 443,
    444, 445, 446, 447, 448, 449, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459,
    460, 461, 462, 463, 464, 465, 466, 467, 3, 7, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
    58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73,
    74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
    90, 91, 92, 93, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106,
    107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
    123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138,
    139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 153, 154, 155, 156,
    157, 158, 159, 160, 161, 162, 163, 165, 166, 167, 169, 170, 171, 172, 173, 174,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 196, 198, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211,
    212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227,
    228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243,
    244, 245, 246, 247,
)  # fmt: skip


def _swap_side(name: str) -> str:
    if name.startswith("LEFT_"):
        return "RIGHT_" + name[5:]
    if name.startswith("RIGHT_"):
        return "LEFT_" + name[6:]
    return name.replace("_LEFT", "_RIGHT") if "_LEFT" in name else name.replace("_RIGHT", "_LEFT")


POSE_MIRROR: tuple[int, ...] = tuple(
    POSE_LANDMARK_NAMES.index(_swap_side(name)) for name in POSE_LANDMARK_NAMES
)


def _flip_permutation() -> np.ndarray:
    perm = np.empty(NUM_POINTS, dtype=np.int64)
    pose, face = PART_SLICES["pose"], PART_SLICES["face"]
    left, right = PART_SLICES["left_hand"], PART_SLICES["right_hand"]
    perm[pose] = np.asarray(POSE_MIRROR) + pose.start
    perm[face] = np.asarray(FACE_MIRROR) + face.start
    perm[left] = np.arange(right.start, right.stop)
    perm[right] = np.arange(left.start, left.stop)
    perm.setflags(write=False)
    return perm


# flipped[..., i, :] = original[..., FLIP_PERMUTATION[i], :] for a horizontally mirrored image.
FLIP_PERMUTATION: np.ndarray = _flip_permutation()


def lip_indices() -> np.ndarray:
    """Layout indices (0..542) of the 40 lip points, in ``LIP_POINTS`` order."""
    return np.asarray(LIP_POINTS, dtype=np.int64) + FACE_OFFSET


def part_of(index: int) -> tuple[str, int]:
    """The part name and the part-local index of layout point ``index`` (0..542)."""
    if not 0 <= index < NUM_POINTS:
        raise IndexError(f"landmark index {index} is outside 0..{NUM_POINTS - 1}")
    for name in PART_NAMES:
        part = PART_SLICES[name]
        if part.start <= index < part.stop:
            return name, index - part.start
    raise AssertionError("unreachable: PART_SLICES cover 0..542")


def point_name(index: int) -> str:
    """A readable name of layout point ``index``, e.g. ``right_hand[4] THUMB_TIP`` or ``face[13]``."""
    part, local = part_of(index)
    if part == "pose":
        return f"pose[{local}] {POSE_LANDMARK_NAMES[local]}"
    if part == "face":
        return f"face[{local}]"
    return f"{part}[{local}] {HAND_LANDMARK_NAMES[local]}"
