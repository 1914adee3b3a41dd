"""MediaPipe Holistic's own models on edge-slr's runtimes (edge_slr.landmarks.holistic.models).

Real model files (the mediapipe 0.10.21 wheel), real engines, real frames from ../shared/data for
the crops. Tolerances between FP32 engines are far above float rounding (the engines agree to
~1e-4 pixels here); INT8 is held to the verification tolerance of quantize.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from edge_slr._optional import is_available
from edge_slr.errors import FormatError, InputError
from edge_slr.landmarks.holistic import models as hm

pytestmark = pytest.mark.skipif(hm.wheel_model_dir() is None, reason="mediapipe is not installed")

needs_openvino = pytest.mark.skipif(not is_available("openvino"), reason="openvino missing")
needs_litert = pytest.mark.skipif(not is_available("ai_edge_litert"), reason="litert missing")


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the module (building OpenVINO IR takes a few seconds a model)."""
    return tmp_path_factory.mktemp("holistic-cache")


@pytest.fixture(scope="module")
def calibration(shared_data: Path, cache: Path):
    """Real crops from the AUTSL clip (MediaPipe's graph finds the parts once)."""
    from edge_slr.landmarks.holistic.quantize import calibration_set

    video = shared_file(shared_data, "video/autsl_signer0_sample1000_color.mp4")
    return calibration_set([video], max_frames=16, cache_dir=cache)


def _wheel_file(role: str) -> Path:
    return hm.wheel_model_dir() / hm.ROLE_SPECS[role].path


def _user_folder(folder: Path, replace: dict[str, bytes] | None = None) -> Path:
    """The five files flat in ``folder`` (symlinks), some replaced by other bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, spec in hm.ROLE_SPECS.items():
        target = folder / spec.file_name
        if replace and role in replace:
            target.write_bytes(replace[role])
        else:
            target.symlink_to(_wheel_file(role))
    return folder


# -- discovery and validation ---------------------------------------------------------------------


def test_models_module_imports_nothing_heavy() -> None:
    code = (
        "import sys; import edge_slr.landmarks.holistic.models as m; m.wheel_model_dir(); "
        "heavy = ['openvino', 'nncf', 'ai_edge_litert', 'onnxruntime', 'tensorflow', "
        "'mediapipe', 'cv2', 'torch', 'tf2onnx', 'onnx', 'edge_slr.training', "
        "'edge_slr.converters']; print([h for h in heavy if h in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_discovery_from_the_wheel() -> None:
    files = hm.find_model_files()
    assert tuple(files) == hm.MODEL_ROLES
    for role, found in files.items():
        assert found.known and found.sha256 == hm.ROLE_SPECS[role].sha256
        assert found.path == _wheel_file(role)
        assert found.path.parent.parent.name == "modules"


@pytest.mark.parametrize("layout", ["flat", "wheel"])
def test_discovery_from_a_user_folder(tmp_path: Path, layout: str) -> None:
    if layout == "flat":
        folder = _user_folder(tmp_path / "models")
    else:
        folder = tmp_path / "modules"
        for role, spec in hm.ROLE_SPECS.items():
            (folder / spec.path).parent.mkdir(parents=True, exist_ok=True)
            (folder / spec.path).symlink_to(_wheel_file(role))
    files = hm.find_model_files(folder)
    assert all(f.known and f.path.parent.is_relative_to(folder) for f in files.values())


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path / "models")
    (folder / "face_landmark.tflite").unlink()
    with pytest.raises(FormatError, match=r"face_landmark\.tflite.*face_landmark model is missing"):
        hm.find_model_files(folder)
    with pytest.raises(InputError, match="is not a folder"):
        hm.find_model_files(tmp_path / "nowhere")


def test_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    data = _wheel_file("hand_recrop").read_bytes()
    folder = _user_folder(tmp_path / "cut", {"hand_recrop": data[: len(data) // 2]})
    with pytest.raises(FormatError, match=r"hand_recrop\.tflite.*looks truncated"):
        hm.find_model_files(folder)
    folder = _user_folder(tmp_path / "junk", {"pose_detection": b"<html>not a model</html>"})
    with pytest.raises(FormatError, match=r"pose_detection\.tflite.*not a TFLite model"):
        hm.find_model_files(folder)


@needs_litert
def test_other_model_version_refused_unless_allowed(tmp_path: Path, caplog) -> None:
    # A real model of another release with the same inputs/outputs: the "lite" hand model.
    lite = (_wheel_file("hand_landmark").parent / "hand_landmark_lite.tflite").read_bytes()
    folder = _user_folder(tmp_path / "models", {"hand_landmark": lite})
    with pytest.raises(FormatError, match="not the mediapipe 0.10.21.*allow_unknown_models"):
        hm.find_model_files(folder)
    with caplog.at_level(logging.WARNING):
        models = hm.load_holistic_models("litert", model_dir=folder, allow_unknown_models=True)
    with models:
        assert not models.info["hand_landmark"]["known"] and models.info["face_landmark"]["known"]
        out = models.run("hand_landmark", np.zeros((1, 224, 224, 3), np.float32))
        assert out["landmarks"].shape == (1, 63)
    assert "allow_unknown_models=True" in caplog.text


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="unknown Holistic engine 'tensorrt'"):
        hm.load_holistic_models("tensorrt")
    with pytest.raises(InputError, match="roles must be among"):
        hm.build_holistic_models("openvino", roles=("palm_detection",))


# -- engines --------------------------------------------------------------------------------------


def _real_inputs(calibration, held_out: bool = True) -> dict[str, list[np.ndarray]]:
    return {role: calibration.images(role, held_out=held_out) for role in hm.MODEL_ROLES}


def _check_stable_outputs(models: hm.HolisticModelSet, inputs: dict[str, list[np.ndarray]]):
    results = {}
    for role, spec in hm.ROLE_SPECS.items():
        out = models.run(role, inputs[role][0])
        assert set(out) == set(spec.used), role
        for name, value in out.items():
            assert value.shape == spec.output_shape(name) and value.dtype == np.float32
            assert np.isfinite(value).all()
        results[role] = [models.run(role, image) for image in inputs[role]]
    return results


@needs_litert
def test_litert_set_runs_real_crops_and_checks_input(calibration) -> None:
    with hm.load_holistic_models("litert", threads=1) as models:
        assert models.engine == "litert" and set(models.runtimes) == set(hm.MODEL_ROLES)
        _check_stable_outputs(models, _real_inputs(calibration))
        # MediaPipe's graph found a hand in each held-out hand crop: so does the model.
        hands = [models.run("hand_landmark", x) for x in calibration.images("hand_landmark", True)]
        assert all(float(h["hand_flag"][0, 0]) > 0.5 for h in hands)
        with pytest.raises(InputError, match=r"hand_landmark model takes a \(1, 224, 224, 3\)"):
            models.run("hand_landmark", np.zeros((1, 256, 256, 3), np.float32))
        with pytest.raises(InputError, match="unknown Holistic model role 'palm'"):
            models.run("palm", np.zeros((1, 224, 224, 3), np.float32))
        # A replica runs the same files on runtimes of its own (one per concurrent caller).
        crop = calibration.images("hand_landmark", True)[0]
        with models.replicate(("hand_recrop", "hand_landmark")) as replica:
            assert set(replica.runtimes) == {"hand_recrop", "hand_landmark"}
            assert replica.runtimes["hand_landmark"] is not models.runtimes["hand_landmark"]
            again = replica.run("hand_landmark", crop)
            assert np.array_equal(again["landmarks"], hands[0]["landmarks"])
        with pytest.raises(InputError, match="cannot replicate roles"):
            models.replicate(("palm",))


@needs_openvino
@needs_litert
def test_openvino_fp32_matches_litert_on_real_crops(cache: Path, calibration) -> None:
    inputs = _real_inputs(calibration)
    with hm.load_holistic_models("litert") as models:
        expected = _check_stable_outputs(models, inputs)
    with hm.load_holistic_models("openvino", cache_dir=cache, threads=2) as models:
        assert all(r.threads == 2 for r in models.runtimes.values())
        assert all(r.config["INFERENCE_PRECISION_HINT"] == "f32" for r in models.runtimes.values())
        # unpinned, so that models run from two threads do not share one core
        assert all(r.config["ENABLE_CPU_PINNING"] == "NO" for r in models.runtimes.values())
        got = _check_stable_outputs(models, inputs)
        info = models.info
    assert info["pose_landmark"]["pruned_outputs"] == ["segmentation", "world_landmarks"]
    assert info["hand_landmark"]["pruned_outputs"] == ["world_landmarks"]
    for role in hm.MODEL_ROLES:
        agreement = hm.compare_outputs(role, expected[role], got[role])
        # tolerance: 1e-3 of the crop (0.2 pixels); the engines differ by ~1e-6 here
        assert agreement["max_point_error"] is None or agreement["max_point_error"] < 1e-3, role
        for ref, oth in zip(expected[role], got[role], strict=True):
            for name in ref:
                assert np.allclose(ref[name], oth[name], atol=0.05, rtol=1e-3), (role, name)
        assert info[role]["verification"]["reference"] == "litert"
        assert info[role]["verification"]["max_abs_diff"] < 0.05


@needs_litert
@needs_openvino
def test_lite_hand_model_finds_the_hands_the_full_one_finds(cache: Path, calibration) -> None:
    files = hm.find_model_files(hand_model="lite")
    assert files["hand_landmark"].path.name == "hand_landmark_lite.tflite"
    assert files["hand_landmark"].known and files["pose_landmark"].path.name.endswith("full.tflite")
    crops = calibration.images("hand_landmark", True)
    with hm.load_holistic_models("litert", threads=1) as models:
        full = [models.run("hand_landmark", x) for x in crops]
    for engine in ("litert", "openvino"):
        with hm.load_holistic_models(engine, cache_dir=cache, hand_model="lite") as models:
            assert models.info["hand_landmark"]["file"] == "hand_landmark_lite.tflite"
            lite = [models.run("hand_landmark", x) for x in crops]
        # MediaPipe's graph found a hand in each crop: the lite model does too, at nearby points
        assert all(float(h["hand_flag"][0, 0]) > 0.5 for h in lite), engine
        for ours, theirs in zip(lite, full, strict=True):
            assert ours["landmarks"].shape == theirs["landmarks"].shape == (1, 63)
            points = np.abs(ours["landmarks"] - theirs["landmarks"]).reshape(21, 3)[:, :2]
            assert float(np.median(points)) < 0.05 * 224, engine  # within 5 % of the crop
    with pytest.raises(InputError, match="hand_model must be one of .* got 'tiny'"):
        hm.find_model_files(hand_model="tiny")


def test_lite_hand_model_is_refused_on_the_graph() -> None:
    from edge_slr.landmarks.extract import HolisticOptions

    assert HolisticOptions(engine="litert", hand_model="lite").hand_model == "lite"
    with pytest.raises(InputError, match="hand_model='lite' runs on the edge-slr engines only"):
        HolisticOptions(engine="mediapipe", hand_model="lite")
    with pytest.raises(InputError, match="hand_model must be one of .*got 'big'"):
        HolisticOptions(engine="litert", hand_model="big")


@needs_openvino
def test_pose_heatmap_can_be_pruned(cache: Path) -> None:
    image = np.full((1, 256, 256, 3), 0.5, np.float32)
    with hm.load_holistic_models("openvino", cache_dir=cache) as models:
        full = models.run("pose_landmark", image)
    built = hm.build_holistic_models(
        "openvino", cache_dir=cache, roles=("pose_landmark",), pose_heatmap=False
    )
    assert built["pose_landmark"].path.name == "pose_landmark-openvino-noheatmap.xml"
    with hm.load_holistic_models("openvino", cache_dir=cache, pose_heatmap=False) as models:
        assert models.info["pose_landmark"]["pruned_outputs"] == [
            "segmentation",
            "heatmap",
            "world_landmarks",
        ]
        lean = models.run("pose_landmark", image)
    assert set(full) == {"landmarks", "pose_flag", "heatmap"} and full["heatmap"].shape == (
        1,
        64,
        64,
        39,
    )
    assert set(lean) == {"landmarks", "pose_flag"}
    assert np.allclose(full["landmarks"], lean["landmarks"], atol=1e-3)


@needs_openvino
def test_cache_is_reused_and_rebuilt_when_stale(tmp_path: Path, caplog) -> None:
    cache = tmp_path / "cache"
    first = hm.build_holistic_models("openvino", cache_dir=cache, roles=("hand_recrop",))
    artifact = first["hand_recrop"]
    xml, bin_file = artifact.path, artifact.path.with_suffix(".bin")
    sidecar = json.loads(hm.sidecar_of(xml).read_text())
    assert sidecar["source"]["sha256"] == hm.ROLE_SPECS["hand_recrop"].sha256
    assert sidecar["versions"]["openvino"] and sidecar["config"] == hm.OPENVINO_CONFIG
    assert {f["name"] for f in sidecar["files"]} == {xml.name, bin_file.name}
    assert sidecar["input"]["range"] == [0.0, 1.0] and sidecar["precision"] == "fp32"
    stamp = bin_file.stat().st_mtime_ns

    again = hm.build_holistic_models("openvino", cache_dir=cache, roles=("hand_recrop",))
    assert again["hand_recrop"].path == xml and bin_file.stat().st_mtime_ns == stamp

    size = bin_file.stat().st_size
    with bin_file.open("r+b") as handle:  # a truncated copy
        handle.truncate(size // 2)
    with caplog.at_level(logging.INFO, logger=hm.__name__):
        hm.build_holistic_models("openvino", cache_dir=cache, roles=("hand_recrop",))
    assert bin_file.stat().st_size == size and "bytes, the sidecar says" in caplog.text

    data = json.loads(hm.sidecar_of(xml).read_text())
    data["versions"]["openvino"] = "2020.1.0"  # built by another OpenVINO
    hm.sidecar_of(xml).write_text(json.dumps(data))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=hm.__name__):
        hm.build_holistic_models("openvino", cache_dir=cache, roles=("hand_recrop",))
    assert "built with openvino 2020.1.0" in caplog.text


@needs_openvino
def test_changed_source_gets_its_own_build(tmp_path: Path, monkeypatch) -> None:
    # A different hand model (the lite one) under the same name: another sha256, another build.
    lite = (_wheel_file("hand_landmark").parent / "hand_landmark_lite.tflite").read_bytes()
    folder = _user_folder(tmp_path / "models", {"hand_landmark": lite})
    monkeypatch.setenv("EDGE_SLR_CACHE", str(tmp_path / "env-cache"))
    built = hm.build_holistic_models(
        "openvino", model_dir=folder, roles=("hand_landmark",), allow_unknown_models=True
    )
    path = built["hand_landmark"].path
    assert path.is_relative_to(tmp_path / "env-cache" / "holistic")
    sidecar = json.loads(hm.sidecar_of(path).read_text())
    assert sidecar["source"]["known"] is False
    assert (
        path.parent.name
        == sidecar["source"]["sha256"][:16]
        != hm.ROLE_SPECS["hand_landmark"].sha256[:16]
    )


@needs_openvino
def test_int8_needs_real_calibration(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs real calibration frames"):
        hm.load_holistic_models("openvino-int8", cache_dir=tmp_path)
    with pytest.raises(InputError, match="video or frame folder not found"):
        hm.build_holistic_models(
            "openvino-int8", cache_dir=tmp_path, calibration=[tmp_path / "none.mp4"]
        )


@needs_openvino
def test_int8_build_and_verification_on_real_crops(cache: Path, calibration) -> None:
    roles = ("hand_recrop", "face_landmark")  # the quick ones; all five in the slow test
    built = hm.build_holistic_models(
        "openvino-int8", cache_dir=cache, calibration=calibration, roles=roles, int8_roles=roles
    )
    for role in roles:
        sidecar = json.loads(hm.sidecar_of(built[role].path).read_text())
        assert sidecar["precision"] == "int8" and sidecar["versions"]["nncf"]
        assert sidecar["calibration"]["calibration_crops"][role] >= 8
        assert sidecar["calibration"]["kept_fp32"]  # the regression heads stay FP32
        check = sidecar["verification"]
        assert check["reference"].startswith("openvino fp32") and check["compared_points"] > 0
        assert check["mean_point_error"] < 0.03, check
        assert check["flag_agreement"] in (None, 1.0)
    assert built["face_landmark"].path.stat().st_size < 0.5 * (
        hm.ROLE_SPECS["face_landmark"].size
    )  # INT8 weights


@needs_openvino
def test_int8_set_can_keep_roles_fp32(cache: Path, calibration) -> None:
    # int8_roles=() needs no calibration: every model runs its FP32 IR
    with hm.load_holistic_models("openvino-int8", cache_dir=cache, int8_roles=()) as models:
        assert {i["precision"] for i in models.info.values()} == {"fp32"}
        assert models.info["pose_landmark"]["fallback"]["reason"] == "not in int8_roles"
    with hm.load_holistic_models(
        "openvino-int8", cache_dir=cache, calibration=calibration, int8_roles=("hand_recrop",)
    ) as models:
        assert models.info["hand_recrop"]["precision"] == "int8"
        assert models.info["hand_recrop"]["fallback"] is None
        assert models.info["face_landmark"]["precision"] == "fp32"
        out = models.run("hand_recrop", calibration.images("hand_recrop", True)[0])
        assert out["landmarks"].shape == (1, 4)
    with pytest.raises(InputError, match="int8_roles must be among"):
        hm.build_holistic_models("openvino-int8", cache_dir=cache, int8_roles=("palm",))


@pytest.mark.slow
@needs_openvino
def test_int8_set_loads_and_agrees_with_fp32(cache: Path, calibration) -> None:
    inputs = _real_inputs(calibration)
    with hm.load_holistic_models("openvino", cache_dir=cache) as models:
        expected = _check_stable_outputs(models, inputs)
    with hm.load_holistic_models(
        "openvino-int8", cache_dir=cache, calibration=calibration, int8_roles=hm.MODEL_ROLES
    ) as models:
        got = _check_stable_outputs(models, inputs)
        info = models.info
    for role in hm.MODEL_ROLES:
        assert info[role]["precision"] == "int8"
        agreement = hm.compare_outputs(role, expected[role], got[role])
        assert agreement["mean_point_error"] < 0.03, (role, agreement)
    # By default only the roles INT8 speeds up without VNNI and keeps accurate are INT8.
    with hm.load_holistic_models(
        "openvino-int8", cache_dir=cache, calibration=calibration
    ) as models:
        precision = {role: i["precision"] for role, i in models.info.items()}
    assert precision == {r: "int8" if r in hm.DEFAULT_INT8_ROLES else "fp32" for r in precision}


@pytest.mark.slow
@pytest.mark.skipif(not is_available("tf2onnx"), reason="tf2onnx (convert extra) missing")
@needs_litert
def test_onnxruntime_set_matches_litert(tmp_path: Path, calibration) -> None:
    inputs = _real_inputs(calibration)
    with hm.load_holistic_models("litert") as models:
        expected = _check_stable_outputs(models, inputs)
    with hm.load_holistic_models("onnxruntime", cache_dir=tmp_path) as models:
        got = _check_stable_outputs(models, inputs)
        info = models.info
    assert info["pose_detection"]["fallback"]["engine"] == "litert"
    assert info["pose_landmark"]["pruned_outputs"] == ["segmentation", "world_landmarks"]
    for role in hm.MODEL_ROLES:
        agreement = hm.compare_outputs(role, expected[role], got[role])
        assert agreement["max_point_error"] is None or agreement["max_point_error"] < 1e-3, role
    # a device without the converter reuses the built files
    assert (tmp_path / hm.ROLE_SPECS["face_landmark"].sha256[:16]).is_dir()


def test_cache_dir_default_follows_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_SLR_CACHE", str(tmp_path))
    assert hm.default_cache_dir() == tmp_path / "holistic"
    monkeypatch.delenv("EDGE_SLR_CACHE")
    assert hm.default_cache_dir() == Path.home() / ".cache" / "edge-slr" / "holistic"
