"""SignSynth language side: deterministic signs, shared components, durations, sentences."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_slr.data.synth.durations import (
    GLOSS_LOG_MEAN_MEAN,
    MAX_FRAMES,
    MIN_FRAMES,
    DurationModel,
)
from edge_slr.data.synth.lexicon import Lexicon, mouthing_for, split_variant
from edge_slr.data.synth.sentences import BUILTIN_SPLIT_SIZES, BuiltinGrammar
from edge_slr.errors import InputError

GLOSSES = BuiltinGrammar.vocabulary_glosses()


def _form(sign):
    """A sign without its name, to compare forms across glosses."""
    return dataclasses.replace(sign, gloss="")


def test_sign_is_deterministic_per_gloss_and_seed():
    a, b = Lexicon(0), Lexicon(0)
    for gloss in GLOSSES[:50]:
        assert a.sign(gloss) == b.sign(gloss)
    other = Lexicon(1)
    changed = sum(_form(a.sign(g)) != _form(other.sign(g)) for g in GLOSSES[:50])
    assert changed >= 45  # another lexicon seed is another sign language


def test_sign_does_not_depend_on_python_hash_seed():
    code = "from edge_slr.data.synth.lexicon import Lexicon; print(repr(Lexicon(0).sign('REGEN')))"
    outputs = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr
        outputs.add(run.stdout)
    assert outputs == {repr(Lexicon(0).sign("REGEN")) + "\n"}


def test_glosses_get_different_signs_that_share_components():
    lexicon = Lexicon(0)
    signs = [lexicon.sign(g) for g in GLOSSES]
    forms = {repr(_form(s)) for s in signs}
    assert len(forms) >= 0.97 * len(signs)  # nearly every gloss has a form of its own
    manual = {repr(dataclasses.replace(_form(s), mouthing=())) for s in signs}
    assert len(manual) < len(forms)  # some are told apart only by mouthing
    handshapes = [s.dominant.handshape for s in signs]
    locations = [s.dominant.location for s in signs]
    assert len(set(handshapes)) < len(signs) / 5  # components come from small inventories
    assert len(set(locations)) < len(signs) / 5

    def components(s):
        d = s.dominant
        return (
            s.form,
            d.handshape,
            d.location,
            d.orientation,
            d.movement.kind,
            d.movement.direction,
        )

    keys = [components(s) for s in signs]
    minimal_pairs = sum(
        sum(x != y for x, y in zip(keys[i], keys[j], strict=True)) == 1
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
    )
    assert minimal_pairs >= 20  # confusable neighbours exist, as in real lexicons


def test_annotation_variants_derive_from_their_base_sign():
    lexicon = Lexicon(0)
    assert split_variant("REGEN-PLUSPLUS") == ("REGEN", "plusplus")
    assert split_variant("loc-NORD") == ("NORD", "loc")
    assert split_variant("HABEN2") == ("HABEN", "number")
    assert split_variant("REGEN") == ("REGEN", None)
    base, plus = lexicon.sign("REGEN"), lexicon.sign("REGEN-PLUSPLUS")
    assert plus.dominant.handshape == base.dominant.handshape
    assert plus.dominant.location == base.dominant.location
    assert plus.dominant.movement.kind == "repeat"
    assert _form(lexicon.sign("loc-REGEN")) != _form(base)
    assert lexicon.sign("__ON__").dominant.movement.direction == (0, -1, 0)  # hands come up


def test_mouthing_is_spelled_from_the_gloss():
    rng = np.random.default_rng(0)
    mama = mouthing_for("MAMA", rng, always=True)
    assert mama[0] == (0.0, 0.1, 0.0) and mama[1][0] > 0.5  # lips closed, then an open /a/
    assert mouthing_for("UHU", rng, always=True)[0][2] == 1.0  # rounded /u/
    assert len(mouthing_for("天气", rng, always=True)) == 2  # non-Latin glosses get shapes too
    with_mouthing = sum(bool(mouthing_for("REGEN", np.random.default_rng(i))) for i in range(400))
    assert 240 < with_mouthing < 360  # about three quarters of signs are mouthed


def test_bad_glosses_and_seeds_are_rejected():
    with pytest.raises(InputError, match="non-empty string"):
        Lexicon(0).sign("")
    with pytest.raises(InputError, match="non-negative integer"):
        Lexicon(-1)


def test_builtin_durations_follow_the_embedded_statistics():
    model = DurationModel.builtin()
    assert model.timing("REGEN") == DurationModel.builtin().timing("REGEN")
    assert not model.timing("REGEN").aligned
    rng = np.random.default_rng(0)
    frames = np.array(model.sample(list(GLOSSES) * 20, rng))
    assert frames.min() >= MIN_FRAMES and frames.max() <= MAX_FRAMES
    # Median close to the real per-gloss median of about exp(2.46) = 11.8 frames.
    assert abs(np.log(np.median(frames)) - GLOSS_LOG_MEAN_MEAN) < 0.15
    faster = np.array(model.sample(list(GLOSSES) * 20, np.random.default_rng(0), speed=1.5))
    assert faster.mean() < frames.mean() / 1.3


def test_durations_from_the_real_alignments(shared_data):
    root = shared_data / "phoenix2014t"
    if not (root / "alignments").is_dir():
        pytest.skip("PHOENIX-2014-T alignments are absent")
    model = DurationModel.from_alignments(root)
    assert model.timing("REGEN").aligned
    assert "qu-REGEN" not in model.table
    assert model.timing("qu-REGEN") == model.timing("REGEN")  # variants use their base gloss
    assert not model.timing("NEVER-SEEN-GLOSS").aligned
    from edge_slr.data.alignments import gloss_durations, load_alignments

    real = gloss_durations(load_alignments(root, "train"))["REGEN"]
    drawn = model.sample(["REGEN"] * 3000, np.random.default_rng(0))
    assert abs(np.mean(drawn) - real.mean) / real.mean < 0.12


def test_builtin_grammar_is_deterministic_with_disjoint_splits():
    small = {"train": 300, "dev": 40, "test": 40}
    grammar = BuiltinGrammar(0, small)
    train, test = grammar.sentences("train"), grammar.sentences("test")
    assert train == BuiltinGrammar(0, small).sentences("train")
    assert train != BuiltinGrammar(1, small).sentences("train")
    assert not {s.glosses for s in train} & {s.glosses for s in test}
    lengths = [len(s.glosses) for s in train]
    assert 6.5 < np.mean(lengths) < 9.0  # PHOENIX-2014-T: 7.8 glosses per sentence
    assert set(g for s in train for g in s.glosses) <= set(GLOSSES)
    assert [s.id for s in test[:2]] == ["builtin-test-00000", "builtin-test-00001"]
    assert BUILTIN_SPLIT_SIZES == {"train": 7096, "dev": 519, "test": 642}
    with pytest.raises(InputError, match="unknown split"):
        grammar.sentences("validation")
