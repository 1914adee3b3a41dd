"""MediaPipe Holistic's own models on edge-slr's runtimes (OpenVINO FP32/INT8, LiteRT, ONNX RT).

The same models as ``mediapipe.solutions.holistic`` (complexity 1), run through
:mod:`edge_slr.runtimes` instead of MediaPipe's graph, with the graph's per-frame logic
reimplemented in numpy/OpenCV::

    from edge_slr.landmarks.extract import HolisticOptions
    from edge_slr.landmarks.holistic import HolisticEngineExtractor

    with HolisticEngineExtractor.create_from_options(HolisticOptions(), engine="litert") as ex:
        seq = ex.extract_video("clip.mp4")               # LandmarkSequence (T, 543, 4)

Modules: :mod:`.models` (find, validate, convert, cache and load the model files),
:mod:`.pipeline` (the per-frame logic), :mod:`.extractor` (the extractor interface and
``extract_many``), :mod:`.profile` (time per stage), :mod:`.detection` (SSD anchors, decoding,
weighted NMS), :mod:`.roi` (rotated ROIs, crops, projection), :mod:`.smoothing` (video-mode
filters). Device-side: nothing here imports training or conversion code.
"""

from edge_slr.landmarks.holistic.extractor import HolisticEngineExtractor, extract_many
from edge_slr.landmarks.holistic.pipeline import HolisticPipeline, PipelineOptions

__all__ = ["HolisticEngineExtractor", "HolisticPipeline", "PipelineOptions", "extract_many"]
