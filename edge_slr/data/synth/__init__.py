"""SignSynth: a synthetic continuous signer driven by real sentences and real timing.

It turns gloss sentences (from PHOENIX-2014, PHOENIX-2014-T, CSL-Daily or a built-in grammar)
into MediaPipe Holistic landmark sequences, and on request RGB video, of synthetic signers
whose ground truth is known. It exists to exercise training, distillation, quantisation and
deployment end to end without a real landmark corpus; accuracy on it says nothing about
accuracy on real signing.

    >>> from edge_slr.data.synth import SignSynth
    >>> synth = SignSynth(seed=0)
    >>> sample = synth.synthesize(["MORGEN", "REGEN"], synth.signer("train", 0))
    >>> sample.landmarks.data.shape[1:]
    (543, 4)

Pipeline (one module each): ``lexicon`` (a deterministic sign per gloss, from ``handshapes``)
-> ``durations`` (real per-gloss timing) -> ``motion`` (timeline, coarticulation) -> ``body``
(kinematics from ``skeleton`` and ``face``) -> ``camera`` (projection, MediaPipe-like tracking)
-> ``render`` (frames); ``signer`` makes the people, ``sentences`` the text, ``generate`` the
datasets, ``config`` the difficulty.
"""

from edge_slr.data.synth.config import PRESETS, SynthDifficulty, get_difficulty
from edge_slr.data.synth.durations import DurationModel
from edge_slr.data.synth.generate import SignSynth, SynthConfig, SynthSample, build_split
from edge_slr.data.synth.lexicon import Lexicon, SignSpec
from edge_slr.data.synth.sentences import BuiltinGrammar, SentenceSpec
from edge_slr.data.synth.signer import SignerProfile, make_signer

__all__ = [
    "PRESETS",
    "BuiltinGrammar",
    "DurationModel",
    "Lexicon",
    "SentenceSpec",
    "SignSpec",
    "SignSynth",
    "SignerProfile",
    "SynthConfig",
    "SynthDifficulty",
    "SynthSample",
    "build_split",
    "get_difficulty",
    "make_signer",
]
