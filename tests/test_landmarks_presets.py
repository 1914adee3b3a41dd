"""Feature presets: shapes, normalisation, missing-hand policy, config round trip, errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from edge_slr.errors import InputError
from edge_slr.landmarks import layout
from edge_slr.landmarks.io import load_landmarks
from edge_slr.landmarks.presets import (
    FeaturePreset,
    available_presets,
    get_preset,
    preset_from_dict,
    register_preset,
    resolve_preset,
    shoulder_reference,
)
from edge_slr.landmarks.sequence import LandmarkSequence

REAL = Path(__file__).parent / "data" / "landmarks" / "sgg-lexicon" / "kleine_frames48-57.pose"
LEFT_HAND = layout.PART_SLICES["left_hand"]


def _body(frames: int = 8, seed: int = 0) -> np.ndarray:
    """A plausible signer: shoulders 0.2 apart around (0.5, 0.6), every part detected."""
    rng = np.random.default_rng(seed)
    data = np.zeros((frames, 543, 4))
    data[..., 0] = rng.uniform(0.3, 0.7, size=(frames, 543))
    data[..., 1] = rng.uniform(0.2, 0.9, size=(frames, 543))
    data[..., 2] = rng.normal(0.0, 0.05, size=(frames, 543))
    data[..., 3] = 1.0
    data[:, layout.LEFT_SHOULDER, :3] = [0.6, 0.6, -0.1]
    data[:, layout.RIGHT_SHOULDER, :3] = [0.4, 0.6, -0.1]
    return data


def _custom(points, **kwargs) -> FeaturePreset:
    return FeaturePreset("test", tuple(points), **kwargs)


def test_builtin_presets_have_the_documented_sizes():
    default = get_preset("kdmslrt92")
    assert default.num_features == 276 and len(default.points) == 92
    expected = (
        list(range(13, 23))
        + [33 + p for p in layout.LIP_POINTS]
        + list(range(501, 522))
        + list(range(522, 543))
    )
    assert list(default.points) == expected
    assert get_preset("hands42").num_features == 126
    assert get_preset("kdmslrt92+presence").num_features == 278
    assert get_preset("kdmslrt92-zeros").missing == "zeros"
    assert {"kdmslrt92", "hands42", "kdmslrt92+presence"} <= set(available_presets())
    assert resolve_preset(None) is default
    names = default.feature_names()
    assert len(names) == 276 and names[:3] == [
        "pose[13] LEFT_ELBOW.x",
        "pose[13] LEFT_ELBOW.y",
        "pose[13] LEFT_ELBOW.z",
    ]
    assert get_preset("kdmslrt92+presence").feature_names()[-1] == "right_hand.present"


@pytest.mark.parametrize("name", ["kdmslrt92", "hands42", "kdmslrt92+presence", "kdmslrt92-zeros"])
def test_features_shape_dtype_and_same_for_array_and_sequence(name):
    preset = get_preset(name)
    data = _body()
    features = preset.features(data)
    assert features.shape == (8, preset.num_features)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    np.testing.assert_array_equal(features, preset.features(LandmarkSequence(data, fps=25)))


def test_shoulders_land_at_plus_minus_half_and_z_is_only_scaled():
    features = _custom([layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER]).features(_body())
    np.testing.assert_allclose(features[0], [0.5, 0.0, -0.5, -0.5, 0.0, -0.5], atol=1e-6)
    raw = _custom([layout.LEFT_SHOULDER], normalization="none").features(_body())
    np.testing.assert_allclose(raw[0], [0.6, 0.6, -0.1], atol=1e-6)


@pytest.mark.parametrize("name", ["kdmslrt92", "kdmslrt92-zeros", "hands42"])
def test_features_do_not_change_when_the_signer_moves_or_scales(name):
    preset = get_preset(name)
    data = _body()
    data[2:4, LEFT_HAND] = 0.0  # with a dropout, so the missing policy is exercised too
    moved = data.copy()
    present = moved[..., 3] > 0
    scale, shift = 1.7, np.array([-0.21, 0.13])
    moved[..., :2] = np.where(present[..., None], moved[..., :2] * scale + shift, 0.0)
    moved[..., 2] = np.where(present, moved[..., 2] * scale, 0.0)
    np.testing.assert_allclose(preset.features(moved), preset.features(data), atol=1e-5)
    assert not np.allclose(_custom(preset.points, normalization="none").features(moved)[:, :3],
                           _custom(preset.points, normalization="none").features(data)[:, :3])  # fmt: skip


def test_reference_is_robust_to_a_few_wrong_shoulder_frames():
    data = _body(frames=9)
    data[4, layout.LEFT_SHOULDER, :2] = [0.95, 0.1]  # one bad detection
    data[5, layout.RIGHT_SHOULDER, 3] = 0.0  # and one frame without a shoulder
    centre, scale = shoulder_reference(data)
    np.testing.assert_allclose(centre, [0.5, 0.6])
    assert scale == pytest.approx(0.2)


def test_fallback_without_pose_warns_and_nothing_present_is_an_error(caplog):
    data = _body()
    data[:, layout.PART_SLICES["pose"]] = 0.0
    data[:, 33:, :2] = np.linspace(0.2, 0.6, 510)[None, :, None]  # points span 0.2..0.6
    with caplog.at_level(logging.WARNING, logger="edge_slr.landmarks.presets"):
        centre, scale = shoulder_reference(data)
    assert "no frame has both shoulders" in caplog.text
    np.testing.assert_allclose(centre, [0.4, 0.4])
    assert scale == pytest.approx(0.4)
    assert np.isfinite(get_preset("kdmslrt92").features(data)).all()
    with pytest.raises(InputError, match="no point is present .* 8 frames"):
        get_preset("hands42").features(np.zeros((8, 543, 4)))


def test_hold_keeps_the_last_seen_hand_and_zeros_before_the_first():
    data = _body(frames=7)
    data[0:2, LEFT_HAND] = 0.0  # not yet detected
    data[3:5, LEFT_HAND] = 0.0  # lost for two frames
    hold = _custom(range(LEFT_HAND.start, LEFT_HAND.stop), presence=("left_hand",))
    features = hold.features(data)
    assert (features[0:2, :-1] == 0).all()
    np.testing.assert_array_equal(features[3], np.r_[features[2, :-1], 0.0])
    np.testing.assert_array_equal(features[4], features[3])
    assert not np.array_equal(features[5, :-1], features[2, :-1])
    assert features[:, -1].tolist() == [0, 0, 1, 0, 0, 1, 1]
    zeros = _custom(range(LEFT_HAND.start, LEFT_HAND.stop), missing="zeros").features(data)
    assert (zeros[[0, 1, 3, 4]] == 0).all() and (zeros[[2, 5, 6]] != 0).any(axis=1).all()
    np.testing.assert_array_equal(zeros[[2, 5, 6]], features[[2, 5, 6], :-1])


def test_features_of_a_mirrored_signer_are_the_flipped_features():
    seq = LandmarkSequence(_body(), fps=25)
    preset = get_preset("kdmslrt92")
    features = preset.features(seq).reshape(8, 92, 3)
    mirrored = preset.features(seq.mirrored()).reshape(8, 92, 3)
    position = {p: i for i, p in enumerate(preset.points)}
    partner = [position[int(layout.FLIP_PERMUTATION[p])] for p in preset.points]
    np.testing.assert_allclose(mirrored, features[:, partner] * [-1, 1, 1], atol=1e-5)


def test_features_of_a_real_recording_are_finite_and_body_sized():
    features = get_preset("kdmslrt92").features(load_landmarks(REAL)).reshape(10, 92, 3)
    assert np.isfinite(features).all()
    # Hands and lips stay within a few shoulder widths of the chest.
    assert np.abs(features[..., :2]).max() < 4


def test_nan_input_names_frame_and_point():
    data = _body()
    data[5, 530, 0] = np.nan
    with pytest.raises(InputError) as info:
        get_preset("kdmslrt92").features(data)
    message = str(info.value)
    assert "frame 5" in message and "point 530" in message and "x = nan" in message
    assert "kdmslrt92" in message
    with pytest.raises(InputError, match=r"shape \(8, 92, 3\); expected \(T, 543, 4\)"):
        get_preset("kdmslrt92").features(np.zeros((8, 92, 3)))


def test_preset_round_trips_through_json_config():
    for name in available_presets():
        preset = get_preset(name)
        spec = json.loads(json.dumps(preset.to_dict()))
        assert preset_from_dict(spec) == preset
    custom = resolve_preset(
        {"name": "xy-hands", "points": list(range(501, 543)), "channels": ["x", "y"]}
    )
    assert custom.num_features == 84 and custom.channels == ("x", "y")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"points": [1, 543]}, "point 543 is outside the layout"),
        ({"points": [1, 1]}, "without repeats"),
        ({"points": []}, "non-empty"),
        ({"points": [1.5]}, "not an integer"),
        ({"channels": ["x", "w"]}, "channel is 'w'"),
        ({"normalization": "wrist"}, "normalization is 'wrist'"),
        ({"missing": "interpolate"}, "missing is 'interpolate'; expected one of"),
        ({"presence": ["hand"]}, "presence part is 'hand'"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ],
)
def test_invalid_preset_specs_are_explained(changes, message):
    spec = {**get_preset("hands42").to_dict(), **changes}
    with pytest.raises(InputError, match=message):
        preset_from_dict(spec)


def test_registry_errors():
    with pytest.raises(InputError, match=r"unknown feature preset 'nope'; available: \["):
        get_preset("nope")
    with pytest.raises(InputError, match="already registered"):
        register_preset(FeaturePreset("hands42", (501,)))
    register_preset(get_preset("hands42"))  # the same definition again is fine
    with pytest.raises(InputError, match="lacks 'points'"):
        preset_from_dict({"name": "x"})
