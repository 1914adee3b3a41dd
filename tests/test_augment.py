"""Landmark augmentation: each transform keeps what it must keep."""

from __future__ import annotations

import numpy as np
import pytest

from edge_slr.errors import InputError
from edge_slr.landmarks.layout import FLIP_PERMUTATION, PART_SLICES
from edge_slr.training.augment import (
    AugmentConfig,
    augment,
    fuse_frames,
    horizontal_flip,
    rescale_time,
    rotate,
    scale,
    translate,
)

LEFT, RIGHT = PART_SLICES["left_hand"], PART_SLICES["right_hand"]


def landmarks(num_frames: int = 20, seed: int = 0) -> np.ndarray:
    """Random in-image points; the left hand is missing (NaN coordinates) in the first 5 frames."""
    rng = np.random.default_rng(seed)
    data = np.empty((num_frames, 543, 4), dtype=np.float32)
    data[..., :2] = rng.uniform(0.1, 0.9, size=(num_frames, 543, 2))
    data[..., 2] = rng.normal(0, 0.1, size=(num_frames, 543))
    data[..., 3] = 1.0
    data[:5, LEFT, :3] = np.nan
    data[:5, LEFT, 3] = 0.0
    return data


def pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)


def present_frame(data: np.ndarray, t: int) -> np.ndarray:
    return data[t][data[t, :, 3] > 0, :3]


def assert_missing_unchanged(before: np.ndarray, after: np.ndarray) -> None:
    missing = before[..., 3] == 0
    np.testing.assert_array_equal(after[..., 3] == 0, missing)
    np.testing.assert_array_equal(after[missing], before[missing])  # NaN == NaN per array_equal


def test_flip_twice_is_identity_and_input_is_not_modified() -> None:
    data = landmarks()
    original = data.copy()
    twice = horizontal_flip(horizontal_flip(data))
    np.testing.assert_allclose(twice, data, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(data, original)


def test_flip_swaps_hands_and_mirrors_x() -> None:
    data = landmarks()
    flipped = horizontal_flip(data)
    # the right hand of the mirror image is the mirrored left hand (missing where it was missing)
    np.testing.assert_allclose(flipped[5:, RIGHT, 0], 1.0 - data[5:, LEFT, 0], atol=1e-6)
    np.testing.assert_array_equal(flipped[5:, RIGHT, 1:], data[5:, LEFT, 1:])
    assert np.all(flipped[:5, RIGHT, 3] == 0) and np.all(np.isnan(flipped[:5, RIGHT, 0]))
    # pose: left shoulder (11) <-> right shoulder (12); nose (0) stays
    np.testing.assert_allclose(flipped[:, 11, 0], 1.0 - data[:, 12, 0], atol=1e-6)
    np.testing.assert_allclose(flipped[:, 0, 0], 1.0 - data[:, 0, 0], atol=1e-6)
    assert np.array_equal(np.sort(FLIP_PERMUTATION), np.arange(543))


def test_rotation_keeps_distances_and_missing_points() -> None:
    data = landmarks()
    rotated = rotate(data, 23.0)
    for t in (0, 7):
        np.testing.assert_allclose(
            pairwise(present_frame(rotated, t)), pairwise(present_frame(data, t)), atol=2e-5
        )
    assert not np.allclose(rotated[7, :, :2], data[7, :, :2])
    assert_missing_unchanged(data, rotated)
    np.testing.assert_allclose(rotate(data, 360.0), data, atol=2e-5, equal_nan=True)


def test_scaling_scales_distances_and_translation_keeps_them() -> None:
    data = landmarks()
    scaled = scale(data, 1.3)
    moved = translate(data, (0.05, -0.02))
    d = pairwise(present_frame(data, 9))
    np.testing.assert_allclose(pairwise(present_frame(scaled, 9)), 1.3 * d, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pairwise(present_frame(moved, 9)), d, atol=2e-5)
    np.testing.assert_allclose(moved[9, :, 0] - data[9, :, 0], 0.05, atol=1e-6)
    assert_missing_unchanged(data, scaled)
    assert_missing_unchanged(data, moved)
    with pytest.raises(InputError, match="factor"):
        scale(data, 0.0)


def test_fusion_merges_pairs_and_keeps_length_semantics() -> None:
    data = landmarks(12)
    fused = fuse_frames(data, np.array([0, 4, 9]), np.array([0.5, 0.25, 1.0]))
    assert fused.shape[0] == 12 - 3
    # frame order: (0+1) 2 3 (4+5) 6 7 8 (9+10) 11
    np.testing.assert_allclose(fused[1], data[2])
    np.testing.assert_allclose(fused[3, 100:200], 0.25 * data[4, 100:200] + 0.75 * data[5, 100:200])
    np.testing.assert_allclose(fused[7], data[9], rtol=1e-6)
    np.testing.assert_allclose(fused[8], data[11])
    # frame 4 lacks the left hand, frame 5 has it: the fused frame takes frame 5's hand as is
    np.testing.assert_allclose(fused[3, LEFT], data[5, LEFT], rtol=1e-6)
    # frames 0 and 1 both lack it: it stays missing
    assert np.all(fused[0, LEFT, 3] == 0)


def test_fusion_rejects_overlapping_or_outside_pairs() -> None:
    data = landmarks(10)
    with pytest.raises(InputError, match="non-overlapping"):
        fuse_frames(data, np.array([2, 3]), np.array([0.5, 0.5]))
    with pytest.raises(InputError, match="non-overlapping"):
        fuse_frames(data, np.array([9]), np.array([0.5]))


def test_time_rescale_length_and_endpoints() -> None:
    data = landmarks(40)
    for factor in (0.5, 0.8, 1.0, 1.25):
        out = rescale_time(data, factor)
        assert out.shape[0] == round(40 * factor)
        np.testing.assert_array_equal(out[0], data[0])
        np.testing.assert_array_equal(out[-1], data[-1])


def test_augment_is_seeded_and_respects_probabilities() -> None:
    data = landmarks(40)
    config = AugmentConfig(time_rescale_p=0.5, scale_p=0.5, translation_p=0.5)
    a = augment(data, config, np.random.default_rng(3))
    b = augment(data, config, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        augment(data, AugmentConfig.none(), np.random.default_rng(0)), data
    )
    flipped = augment(data, AugmentConfig.only("flip", p=1.0), np.random.default_rng(0))
    np.testing.assert_allclose(flipped, horizontal_flip(data), equal_nan=True)


def test_paper_recipe_rates() -> None:
    config = AugmentConfig()
    assert (config.flip_p, config.rotation_p, config.fusion_p) == (0.5, 0.3, 0.2)
    assert config.translation_p == config.scale_p == config.time_rescale_p == 0.0
    data = landmarks(30)
    rng = np.random.default_rng(1)
    changed_length = sum(augment(data, config, rng).shape[0] != 30 for _ in range(400))
    assert 40 < changed_length < 120  # fusion fires in about 20% of 400 draws


def test_temporal_transforms_never_go_below_min_frames() -> None:
    data = landmarks(30)
    config = AugmentConfig.none(
        fusion_p=1.0, fusion_fraction=1.0, time_rescale_p=1.0, time_rescale_range=(0.5, 0.5)
    ).with_min_frames(28)
    for seed in range(10):
        assert augment(data, config, np.random.default_rng(seed)).shape[0] >= 28


@pytest.mark.parametrize(
    "kwargs",
    [{"flip_p": 1.5}, {"scale_range": (1.2, 0.8)}, {"min_frames": 0}, {"max_rotation_deg": -1}],
)
def test_bad_config_is_rejected(kwargs: dict) -> None:
    with pytest.raises(InputError):
        AugmentConfig(**kwargs)


def test_bad_shape_is_rejected() -> None:
    with pytest.raises(InputError, match=r"\(frames, 543, 4\)"):
        horizontal_flip(np.zeros((10, 75, 3), dtype=np.float32))
