"""The 543-point layout, its flip permutation and LandmarkSequence validation."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge_slr.errors import InputError
from edge_slr.landmarks import layout
from edge_slr.landmarks.io import load_landmarks
from edge_slr.landmarks.sequence import LandmarkSequence, as_landmark_array

DATA = Path(__file__).parent / "data" / "landmarks"
EXCERPT_586 = DATA / "pose-format" / "7731febd_frames13-16.pose"


def _mediapipe_solution(name: str) -> ModuleType:
    """A MediaPipe connection-table module, loaded from its file without importing mediapipe."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mediapipe is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "python" / "solutions" / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path} is absent from this mediapipe")
    module_spec = importlib.util.spec_from_file_location(f"_mp_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _edges(pairs) -> set[frozenset[int]]:
    return {frozenset(map(int, pair)) for pair in pairs}


def _sequence(frames: int = 5, seed: int = 0) -> LandmarkSequence:
    rng = np.random.default_rng(seed)
    data = np.zeros((frames, 543, 4), dtype=np.float32)
    data[..., :2] = rng.uniform(0.2, 0.8, size=(frames, 543, 2))
    data[..., 2] = rng.normal(0, 0.05, size=(frames, 543))
    data[..., 3] = 1.0
    data[:, layout.PART_SLICES["pose"], 3] = rng.uniform(0.1, 1.0, size=(frames, 33))
    data[1:3, layout.PART_SLICES["left_hand"]] = 0.0  # undetected hand
    return LandmarkSequence(data, fps=25.0, metadata={"id": "synthetic"})


def test_parts_tile_the_layout():
    covered = []
    for name in layout.PART_NAMES:
        part = layout.PART_SLICES[name]
        covered.extend(range(part.start, part.stop))
        assert layout.PART_SIZES[name] == part.stop - part.start
    assert covered == list(range(layout.NUM_POINTS)) == list(range(543))
    assert [layout.PART_SIZES[n] for n in layout.PART_NAMES] == [33, 468, 21, 21]
    assert layout.point_name(526) == "right_hand[4] THUMB_TIP"
    assert layout.point_name(layout.LEFT_SHOULDER) == "pose[11] LEFT_SHOULDER"
    assert layout.part_of(33 + 13) == ("face", 13)
    with pytest.raises(IndexError, match="543"):
        layout.part_of(543)


def test_lips_are_the_forty_facemesh_lip_points():
    assert len(layout.LIP_POINTS) == 40 == len(set(layout.LIP_POINTS))
    assert {p for edge in layout.LIP_CONNECTIONS for p in edge} == set(layout.LIP_POINTS)
    np.testing.assert_array_equal(layout.lip_indices(), np.asarray(layout.LIP_POINTS) + 33)
    mesh = _mediapipe_solution("face_mesh_connections")
    assert _edges(layout.LIP_CONNECTIONS) == _edges(mesh.FACEMESH_LIPS)


def test_skeleton_connections_match_mediapipe():
    assert _edges(layout.POSE_CONNECTIONS) == _edges(
        _mediapipe_solution("pose_connections").POSE_CONNECTIONS
    )
    assert _edges(layout.HAND_CONNECTIONS) == _edges(
        _mediapipe_solution("hands_connections").HAND_CONNECTIONS
    )


def test_landmark_names_match_a_real_holistic_file():
    pose_format = pytest.importorskip("pose_format")
    with open(EXCERPT_586, "rb") as handle:
        header = pose_format.Pose.read(handle.read()).header
    components = {c.name: c.points for c in header.components}
    assert tuple(components["POSE_LANDMARKS"]) == layout.POSE_LANDMARK_NAMES
    assert tuple(components["LEFT_HAND_LANDMARKS"]) == layout.HAND_LANDMARK_NAMES
    assert tuple(components["RIGHT_HAND_LANDMARKS"]) == layout.HAND_LANDMARK_NAMES


def test_flip_permutation_is_an_involution_that_swaps_sides():
    perm = layout.FLIP_PERMUTATION
    assert sorted(perm.tolist()) == list(range(543))
    np.testing.assert_array_equal(perm[perm], np.arange(543))
    left, right = layout.PART_SLICES["left_hand"], layout.PART_SLICES["right_hand"]
    np.testing.assert_array_equal(perm[left], np.arange(right.start, right.stop))
    names = layout.POSE_LANDMARK_NAMES
    for i, name in enumerate(names):
        expected = name.replace("LEFT", "#").replace("RIGHT", "LEFT").replace("#", "RIGHT")
        assert names[perm[i]] == expected
    lips = set(layout.lip_indices().tolist())
    assert {int(perm[i]) for i in lips} == lips
    arms = set(layout.ARM_POINTS)
    assert {int(perm[i]) for i in arms} == arms
    face = np.asarray(layout.FACE_MIRROR)
    assert int((face == np.arange(468)).sum()) == 28  # points on the face's midline
    assert not perm.flags.writeable


def test_face_mirror_maps_mediapipe_regions_onto_their_mirror():
    mesh = _mediapipe_solution("face_mesh_connections")
    mirror = np.asarray(layout.FACE_MIRROR)

    def mirrored(edges):
        return {frozenset(mirror[list(edge)].tolist()) for edge in _edges(edges)}

    for name in ("FACEMESH_CONTOURS", "FACEMESH_LIPS", "FACEMESH_FACE_OVAL"):
        assert mirrored(getattr(mesh, name)) == _edges(getattr(mesh, name)), name
    assert mirrored(mesh.FACEMESH_LEFT_EYE) == _edges(mesh.FACEMESH_RIGHT_EYE)
    assert mirrored(mesh.FACEMESH_LEFT_EYEBROW) == _edges(mesh.FACEMESH_RIGHT_EYEBROW)


def _derive_face_mirror(points: np.ndarray) -> np.ndarray:
    """Pair each face point with the nearest point of the reflected face (see layout docstring)."""
    from scipy.optimize import linear_sum_assignment

    centred = points - points.mean(axis=0)
    reflected = centred * np.array([-1.0, 1.0, 1.0])
    cost = ((centred[:, None, :2] - reflected[None, :, :2]) ** 2).sum(-1)
    pairing = linear_sum_assignment(cost)[1]
    for _ in range(5):  # refine: rigidly align the reflected face, then re-pair in 3-D
        u, _, vt = np.linalg.svd(reflected[pairing].T @ centred)
        d = np.sign(np.linalg.det(u @ vt))
        aligned = reflected @ (u @ np.diag([1.0, 1.0, d]) @ vt)
        cost = ((centred[:, None, :] - aligned[None, :, :]) ** 2).sum(-1)
        new = linear_sum_assignment(cost)[1]
        if np.array_equal(new, pairing):
            break
        pairing = new
    return pairing


def _frontal_faces(shared: Path | None) -> list[np.ndarray]:
    files = [EXCERPT_586]
    if shared is not None:
        files += [
            shared / "landmarks" / "autsl" / "signer0_sample1000.pose",
            shared / "landmarks" / "segmentation" / "example.pose",
        ]
    faces = []
    for path in files:
        if not path.exists():
            continue
        seq = load_landmarks(path)
        size = np.array([seq.metadata["image_width"], seq.metadata["image_height"]])
        for t in range(0, seq.num_frames, 15):
            face = seq.part("face")[t].astype(np.float64)
            if (face[:, 3] > 0).all():
                # Pixels, and z in x's scale, so that distances are isotropic.
                faces.append(face[:, :3] * np.array([size[0], size[1], size[0]]))
    return faces


def test_face_mirror_is_what_real_frontal_faces_give():
    pytest.importorskip("scipy.optimize")
    from edge_slr.paths import shared_data_dir

    faces = _frontal_faces(shared_data_dir())
    assert len(faces) >= 1
    derived = np.array([_derive_face_mirror(face) for face in faces])
    majority = [Counter(derived[:, i].tolist()).most_common(1)[0][0] for i in range(468)]
    assert tuple(majority) == layout.FACE_MIRROR


def test_sequence_converts_copies_and_freezes():
    raw = np.zeros((3, 543, 4), dtype=np.float64)
    raw[..., 3] = 1.0
    raw[..., 0] = 0.25
    seq = LandmarkSequence(raw, fps=30)
    assert seq.data.dtype == np.float32 and seq.fps == 30.0 and isinstance(seq.fps, float)
    raw[..., 0] = 0.75  # the sequence does not alias the caller's array
    assert float(seq.data[0, 0, 0]) == 0.25
    with pytest.raises(ValueError, match="read-only"):
        seq.data[0, 0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        seq.fps = 25.0  # type: ignore[misc]
    seq.validate()


def test_missing_points_store_zero_coordinates_never_nan():
    data = _sequence().data.copy()
    data[0, 510, :3] = np.nan
    data[0, 510, 3] = 0.0
    seq = LandmarkSequence(data, fps=25)
    assert np.isfinite(seq.data).all()
    assert seq.data[0, 510].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert (seq.data[1:3, 501:522] == 0).all()


def test_sequence_helpers():
    seq = _sequence(frames=5)
    assert seq.num_frames == len(seq) == 5
    assert seq.duration_s == pytest.approx(0.2)
    assert seq.part("right_hand").shape == (5, 21, 4)
    assert seq.present("left_hand").tolist() == [True, False, False, True, True]
    assert seq.present("face").all()
    assert seq.frames(1, 3).num_frames == 2
    assert seq == LandmarkSequence(seq.data, seq.fps, dict(seq.metadata))
    assert seq != dataclasses.replace(seq, fps=30.0)
    assert "frames=5" in repr(seq) and "left_hand 60%" in repr(seq)
    with pytest.raises(InputError, match="unknown part 'hand'"):
        seq.part("hand")
    with pytest.raises(InputError, match="selects no frame"):
        seq.frames(5, 9)


def test_mirrored_swaps_hands_and_reflects_x():
    seq = _sequence()
    flipped = seq.mirrored()
    twice = flipped.mirrored()
    np.testing.assert_allclose(twice.data, seq.data, atol=1e-7)  # 1 - (1 - x) rounds in float32
    np.testing.assert_array_equal(twice.confidence, seq.confidence)
    assert flipped.present("right_hand").tolist() == seq.present("left_hand").tolist()
    seen = seq.present("left_hand")
    np.testing.assert_allclose(flipped.data[seen, 522:543, 0], 1.0 - seq.data[seen, 501:522, 0])
    np.testing.assert_allclose(
        flipped.data[:, layout.RIGHT_SHOULDER, :3] * [-1, 1, 1] + [1, 0, 0],
        seq.data[:, layout.LEFT_SHOULDER, :3],
        atol=1e-6,
    )
    assert (flipped.data[1:3, 522:543] == 0).all()  # the missing hand stays missing, not x = 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((3, 542, 4)), r"shape \(3, 542, 4\); expected \(T, 543, 4\)"),
        (np.zeros((543, 4)), r"shape \(543, 4\); expected \(T, 543, 4\)"),
        (np.zeros((0, 543, 4)), "0 frames; expected at least 1"),
        (np.zeros((2, 543, 4), dtype=bool), "dtype bool; expected a real number"),
        (np.full((2, 543, 4), "a"), "dtype <U1; expected a real number"),
    ],
)
def test_sequence_rejects_bad_arrays(data, message):
    with pytest.raises(InputError, match=message):
        LandmarkSequence(data, fps=25)


def test_sequence_names_frame_and_point_of_a_nan():
    data = _sequence().data.copy()
    data[3, 510, 1] = np.nan
    with pytest.raises(InputError) as info:
        LandmarkSequence(data, fps=25)
    message = str(info.value)
    for part in ("y = nan", "frame 3", "point 510", "left_hand[9] MIDDLE_FINGER_MCP", "confidence"):
        assert part in message


def test_sequence_rejects_bad_confidence_fps_and_metadata():
    data = _sequence().data.copy()
    data[2, 7, 3] = 1.5
    with pytest.raises(InputError, match=r"confidence 1.5 at frame 2, point 7 .*\[0, 1\]"):
        as_landmark_array(data)
    good = _sequence().data
    for fps in (0, -1.0, float("nan"), True, "25"):
        with pytest.raises(InputError, match="fps"):
            LandmarkSequence(good, fps=fps)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"metadata\['ids'\].*JSON"):
        LandmarkSequence(good, fps=25, metadata={"ids": {1, 2}})
    with pytest.raises(InputError, match="metadata key 3"):
        LandmarkSequence(good, fps=25, metadata={3: "x"})
    huge = good.astype(np.float64)
    huge[0, 0, 0] = 1e300  # finite in float64, inf in float32
    with pytest.raises(InputError, match="x = 1e"):
        LandmarkSequence(huge, fps=25)
