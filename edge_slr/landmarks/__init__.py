"""Landmarks: the canonical 543-point MediaPipe Holistic layout, sequences, presets and files.

Importing this package needs only numpy; pose-format and pyarrow are imported by the functions
that read or write ``.pose`` and ``.parquet`` files.
"""

from edge_slr.landmarks.io import (
    NPZ_FORMAT_VERSION,
    load_landmarks,
    read_npz,
    save_landmarks,
    write_npz,
)
from edge_slr.landmarks.layout import (
    FLIP_PERMUTATION,
    LIP_POINTS,
    NUM_POINTS,
    PART_NAMES,
    PART_SLICES,
)
from edge_slr.landmarks.parquet import read_parquet, write_parquet
from edge_slr.landmarks.pose_file import (
    read_pose,
    sequence_from_pose,
    sequence_to_pose,
    write_pose,
)
from edge_slr.landmarks.presets import (
    DEFAULT_PRESET,
    FeaturePreset,
    available_presets,
    get_preset,
    preset_from_dict,
    register_preset,
    resolve_preset,
)
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array

__all__ = [
    "DEFAULT_PRESET",
    "FLIP_PERMUTATION",
    "LIP_POINTS",
    "NPZ_FORMAT_VERSION",
    "NUM_POINTS",
    "PART_NAMES",
    "PART_SLICES",
    "FeaturePreset",
    "LandmarkSequence",
    "as_landmark_array",
    "available_presets",
    "get_preset",
    "load_landmarks",
    "preset_from_dict",
    "read_npz",
    "read_parquet",
    "read_pose",
    "register_preset",
    "resolve_preset",
    "save_landmarks",
    "sequence_from_pose",
    "sequence_to_pose",
    "write_npz",
    "write_parquet",
    "write_pose",
]
