"""Recognition on the device: landmarks, videos or camera frames in, (corrected) glosses out.

Everything here runs where the model is deployed and never imports training or conversion code
(tests/test_layering.py checks it). One concept a module:

- :mod:`~edge_slr.recognition.recognizer`: :class:`Recognizer`, the public API (offline,
  streaming, live), over one loaded recogniser model and corrector;
- :mod:`~edge_slr.recognition.options`: :class:`RecognizerOptions` and the input checks;
- :mod:`~edge_slr.recognition.results`: :class:`RecognitionResult`, glosses and timings;
- :mod:`~edge_slr.recognition.windows`: the windows long input is recognised in (geometry,
  stitching, per-window features);
- :mod:`~edge_slr.recognition.stream`: frames in, sentences out, in bounded memory;
- :mod:`~edge_slr.recognition.clock`: frames put on the model's frame rate;
- :mod:`~edge_slr.recognition.live`: the live mode (extraction and recognition on two workers);
- :mod:`~edge_slr.recognition.correction`: the gloss corrector's numpy decoding of one stage
  (greedy, draft-verified greedy, beam) and the gate's scores;
- :mod:`~edge_slr.recognition.correction_chain`: the corrector, its stages chained behind
  their gates (its token ids: :class:`edge_slr.decoding.vocab.CorrectorVocabulary`).

``from edge_slr import Recognizer, RecognizerOptions, RecognitionResult`` is the short form; this
package imports nothing on its own, so importing one of its modules loads only what that needs.
"""
