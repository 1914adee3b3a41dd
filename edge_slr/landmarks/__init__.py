"""Landmarks: the canonical 543-point MediaPipe Holistic layout, sequences, presets and files.

Importing this package needs only numpy; pose-format and pyarrow are imported by the functions
that read or write ``.pose`` and ``.parquet`` files. Names load on first use
(:mod:`edge_slr._lazy`): the device path imports ``landmarks.extract`` without the file readers.
"""

from edge_slr._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "io": ("NPZ_FORMAT_VERSION", "load_landmarks", "read_npz", "save_landmarks", "write_npz"),
        "layout": ("FLIP_PERMUTATION", "LIP_POINTS", "NUM_POINTS", "PART_NAMES", "PART_SLICES"),
        "parquet": ("read_parquet", "write_parquet"),
        "pose_file": ("read_pose", "sequence_from_pose", "sequence_to_pose", "write_pose"),
        "presets": (
            "DEFAULT_PRESET",
            "FeaturePreset",
            "available_presets",
            "get_preset",
            "preset_from_dict",
            "register_preset",
            "resolve_preset",
        ),
        "sequence": ("LandmarkSequence", "as_landmark_array"),
    },
)
