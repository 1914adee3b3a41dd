"""3D-to-1D knowledge distillation: the three KD losses of KD-MSLRT.

    conv KD    teacher conv-head distribution   -> student conv (auxiliary) head
    BiLSTM KD  teacher BiLSTM-head distribution -> student BiLSTM head
    self KD    student BiLSTM head (detached)   -> student conv head      (VAC / CorrNet)

Each term is the KL divergence KL(p_teacher || p_student) of the two softmax distributions at a
temperature tau, times tau^2 (so gradients keep their size as tau changes, Hinton et al. 2015),
averaged over the valid output steps of the batch. Each term has its own switch and weight; the
default weight 25 against CTC's 1 is the paper's 1:25 (and VAC's). Like VAC, the blank class is
left out of the distributions by default (``include_blank``): CTC outputs are blank most of the
time, and without the blank the KL carries *which gloss* the teacher believes in.

Units. The 1:25 of VAC/CorrNet (and so KD-MSLRT) balances the KD terms against a per-*sentence*
CTC loss (``CTCLoss(reduction='none')(...).mean()``: each sentence's negative log-likelihood,
averaged over the batch). The training loop's CTC is per *gloss* (``reduction='mean'`` divides
each sentence's loss by its gloss count), which makes the same weight L times heavier (L = glosses
per sentence, about 6 on the KD subset, 11 on PHOENIX-2014-T). With ``per_gloss_units`` (default)
the KD terms are divided by the batch's mean gloss count, so ``loop CTC + weighted KD`` is VAC's
loss divided by L and the paper's 1:25 means what it means there. Measured on the KD subset
(benchmarks/results/kd_ablation*.md): without it, self-KD's gradient was as large as CTC's at
initialisation and 15-50x larger on a trained student; after clipping it starved CTC (dev WER
70% vs 24% without self-KD at 30 epochs). With it, self-KD alone still trails CTC alone in a
short CPU schedule (15 epochs: dev 63% vs 47%; train CTC 2.0 vs 1.3): the KL pulls the conv
head, and through the shared classifier the sequence head, towards a BiLSTM that is itself
still learning. VAC/CorrNet train 40-80 epochs; lower ``self_kd_weight`` for short runs.

Length mismatches. The teacher's temporal block is built to give the student's time axis
exactly (``TeacherDims.edge_trim``), so lengths agree for unaugmented inputs. The student is
trained with temporal augmentation (frame fusion drops frames, time rescaling resamples them),
and the teacher's outputs come from the unaugmented video, so the two can differ. The policy:

* ``"interpolate"`` (default): resample the teacher's logits to the student's number of steps
  by linear interpolation along time (in logit space, i.e. a geometric mean of neighbouring
  distributions). Fusion and rescaling are near-uniform in time, so proportional resampling
  puts each teacher step where its frames went.
* ``"crop"``: keep the first ``min`` steps of both (the other steps get no KD).
* ``"error"``: raise InputError on any mismatch larger than ``max_length_mismatch``.

A mismatch larger than ``max_length_mismatch`` steps is counted (``Distiller.stats``) and logged
as a warning for the first few samples, so a teacher cache made for other data is noticed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge_slr._optional import require
from edge_slr.errors import InputError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

LENGTH_POLICIES = ("interpolate", "crop", "error")
TERMS = ("conv_kd", "lstm_kd", "self_kd")
PAPER_KD_WEIGHT = 25.0  # CTC : KD = 1 : 25 (KD-MSLRT, after VAC)
_WARN_LIMIT = 5


@dataclass(frozen=True)
class DistillConfig:
    """The ``[distill]`` table of a student config. The default distils nothing.

    ``teacher`` is a teacher checkpoint (``.pt``, its outputs are computed once and cached in
    the run folder) or a teacher cache folder (``edge-slr`` ``teacher.cache``).
    """

    teacher: str = ""
    conv_kd: bool = False
    lstm_kd: bool = False
    self_kd: bool = False
    conv_kd_weight: float = PAPER_KD_WEIGHT
    lstm_kd_weight: float = PAPER_KD_WEIGHT
    self_kd_weight: float = PAPER_KD_WEIGHT
    temperature: float = 8.0
    include_blank: bool = False
    length_policy: str = "interpolate"
    max_length_mismatch: int = 1  # output steps; larger differences are counted and logged
    cache_batch_size: int = 4  # when ``teacher`` is a checkpoint: batch for precomputing
    per_gloss_units: bool = True  # KD / mean gloss count: the paper's 1:25 vs a per-gloss CTC

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise InputError(f"distill temperature must be > 0, got {self.temperature}")
        for name in ("conv_kd_weight", "lstm_kd_weight", "self_kd_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"distill {name} must be >= 0, got {getattr(self, name)}")
        if self.length_policy not in LENGTH_POLICIES:
            raise InputError(
                f"distill length_policy must be one of {LENGTH_POLICIES}, "
                f"got {self.length_policy!r}"
            )
        if self.max_length_mismatch < 0 or self.cache_batch_size < 1:
            raise InputError(
                "distill max_length_mismatch must be >= 0 and cache_batch_size >= 1, got "
                f"{self.max_length_mismatch}, {self.cache_batch_size}"
            )
        if (self.conv_kd or self.lstm_kd) and not self.teacher:
            raise InputError(
                "distill conv_kd / lstm_kd need a teacher: set distill.teacher to a teacher "
                "checkpoint or cache (or use only self_kd)"
            )

    @property
    def enabled(self) -> bool:
        return self.conv_kd or self.lstm_kd or self.self_kd

    @property
    def needs_teacher(self) -> bool:
        return self.conv_kd or self.lstm_kd

    def weights(self) -> dict[str, float]:
        """Weight of every switched-on term."""
        return {t: getattr(self, f"{t}_weight") for t in TERMS if getattr(self, t)}

    @classmethod
    def paper(cls, teacher: str, **overrides: Any) -> DistillConfig:
        """All three terms at the paper's weight."""
        base: dict[str, Any] = dict(teacher=teacher, conv_kd=True, lstm_kd=True, self_kd=True)
        return cls(**(base | overrides))


def kd_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    lengths: torch.Tensor | None = None,
    *,
    temperature: float = 8.0,
    include_blank: bool = False,
    blank: int = 0,
) -> torch.Tensor:
    """tau^2 * KL(softmax(teacher / tau) || softmax(student / tau)), mean over valid steps.

    Both logits are (B, T, V); ``lengths`` (B,) marks the valid steps (all when None). The
    teacher side is detached: a KD target never receives gradients.
    """
    torch = require("torch", "distillation losses")
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 3:
        raise InputError(
            f"KD needs student and teacher logits of one (B, T, V) shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if temperature <= 0:
        raise InputError(f"KD temperature must be > 0, got {temperature}")
    if not include_blank:
        keep = [i for i in range(student_logits.shape[-1]) if i != blank]
        student_logits, teacher_logits = student_logits[..., keep], teacher_logits[..., keep]
    log_p_student = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = torch.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    per_step = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)  # (B, T)
    if lengths is None:
        mask = torch.ones_like(per_step, dtype=torch.bool)
    else:
        mask = torch.arange(per_step.shape[1], device=per_step.device)[None] < lengths[:, None]
    count = mask.sum().clamp(min=1)
    return (per_step * mask).sum() / count * temperature**2


def align_steps(logits: np.ndarray, steps: int, policy: str = "interpolate") -> np.ndarray:
    """Teacher logits (T_t, V) brought to ``steps`` rows (see the module notes on policies).

    With ``"crop"`` a longer teacher is cut; a shorter one is returned as it is (the caller
    masks the steps it lacks).
    """
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 2 or len(logits) < 1:
        raise InputError(f"teacher logits must be (T, V) with T >= 1, got shape {logits.shape}")
    if steps < 1:
        raise InputError(f"the student has {steps} output steps; at least 1 is needed")
    if len(logits) == steps:
        return logits
    if policy == "crop":
        return logits[:steps]
    if policy == "error":
        raise InputError(f"teacher has {len(logits)} output steps, the student {steps}")
    if len(logits) == 1:
        return np.repeat(logits, steps, axis=0)
    # Step centres map proportionally: student step j sits at teacher position j * (Tt-1)/(Ts-1).
    where = np.linspace(0.0, len(logits) - 1, steps) if steps > 1 else np.zeros(1)
    low = np.floor(where).astype(np.int64)
    high = np.minimum(low + 1, len(logits) - 1)
    frac = (where - low)[:, None].astype(np.float32)
    return (1.0 - frac) * logits[low] + frac * logits[high]


class TeacherSource(Protocol):
    """Per-sample teacher logits: ``source[sample_id] -> TeacherLogits`` (KeyError if absent)."""

    def __getitem__(self, sample_id: str) -> Any: ...  # pragma: no cover - protocol


@dataclass
class Distiller:
    """Computes the switched-on KD terms for one student batch.

    ``teacher`` maps sample ids to objects with ``conv`` and ``seq`` (T', V) logit arrays
    (:class:`edge_slr.training.teacher.cache.TeacherLogits`); it may be None for self-KD only.
    ``gloss_counts`` maps sample ids to their number of reference glosses; with
    ``config.per_gloss_units`` the terms are divided by the batch's mean count (module notes).
    """

    config: DistillConfig
    teacher: TeacherSource | Mapping[str, Any] | None = None
    gloss_counts: Mapping[str, int] | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"samples": 0, "mismatched": 0})

    def __post_init__(self) -> None:
        if self.config.needs_teacher and self.teacher is None:
            raise InputError("conv_kd / lstm_kd are on but no teacher outputs were given")
        if self.config.per_gloss_units and self.config.enabled and self.gloss_counts is None:
            raise InputError(
                "distill per_gloss_units needs the gloss count of every training sample "
                "(gloss_counts); build the distiller with build_distiller, or set "
                "per_gloss_units = false for raw weights"
            )

    def _glosses_per_sentence(self, ids: Sequence[str]) -> float:
        """The batch's mean gloss count: KD in the units of the loop's per-gloss CTC."""
        if not self.config.per_gloss_units:
            return 1.0
        try:
            counts = [self.gloss_counts[i] for i in ids]  # type: ignore[index]
        except KeyError as err:
            raise InputError(f"no gloss count for sample {err.args[0]!r}") from None
        return max(sum(counts) / len(counts), 1.0)

    def teacher_logits(
        self, ids: Sequence[str], lengths: torch.Tensor, total_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher (conv, seq) logits padded to (B, total_steps, V) on the student's time axis,
        and the number of steps of each row that carry a target."""
        torch = require("torch", "distillation")
        policy = self.config.length_policy
        conv_rows, seq_rows, valid = [], [], []
        for sample_id, steps in zip(ids, lengths.tolist(), strict=True):
            try:
                entry = self.teacher[sample_id]  # type: ignore[index]
            except KeyError:
                raise InputError(
                    f"the teacher outputs have no sample {sample_id!r}: was the cache made "
                    "for this dataset split?"
                ) from None
            self._check_length(sample_id, len(entry.seq), int(steps))
            conv = align_steps(entry.conv, int(steps), policy)
            seq = align_steps(entry.seq, int(steps), policy)
            conv_rows.append(conv)
            seq_rows.append(seq)
            valid.append(min(len(seq), int(steps)))
        vocab = conv_rows[0].shape[1]
        conv = torch.zeros(len(ids), total_steps, vocab)
        seq = torch.zeros(len(ids), total_steps, vocab)
        for row, (c, s) in enumerate(zip(conv_rows, seq_rows, strict=True)):
            conv[row, : len(c)] = torch.from_numpy(c[:total_steps])
            seq[row, : len(s)] = torch.from_numpy(s[:total_steps])
        device = lengths.device  # the student's: the targets follow it
        return (
            conv.to(device),
            seq.to(device),
            torch.tensor(valid, dtype=torch.int64, device=device),
        )

    def _check_length(self, sample_id: str, teacher_steps: int, student_steps: int) -> None:
        self.stats["samples"] += 1
        difference = abs(teacher_steps - student_steps)
        if difference <= self.config.max_length_mismatch:
            return
        if self.config.length_policy == "error":
            raise InputError(
                f"sample {sample_id}: teacher has {teacher_steps} output steps, the student "
                f"{student_steps} (length_policy 'error')"
            )
        self.stats["mismatched"] += 1
        if self.stats["mismatched"] <= _WARN_LIMIT:
            logger.warning(
                "sample %s: teacher has %d output steps, the student %d; %s (%s)",
                sample_id,
                teacher_steps,
                student_steps,
                "resampling the teacher"
                if self.config.length_policy == "interpolate"
                else "cropping",
                "expected with temporal augmentation"
                if self.stats["mismatched"] < _WARN_LIMIT
                else "further mismatches are only counted",
            )

    def losses(self, out: Any, ids: Sequence[str]) -> dict[str, torch.Tensor]:
        """Unweighted KD terms for a student output (``StudentOutput`` with lengths), in the
        units of the loop's per-gloss CTC when ``per_gloss_units`` (divided by the batch's mean
        gloss count)."""
        cfg = self.config
        if out.lengths is None:
            raise InputError("distillation needs the student's output lengths (pass lengths)")
        if (cfg.conv_kd or cfg.self_kd) and out.aux_logits is None:
            raise InputError(
                "conv_kd and self_kd need the student's conv head (model.aux_head = true)"
            )
        kl: dict[str, Any] = dict(temperature=cfg.temperature, include_blank=cfg.include_blank)
        terms: dict[str, torch.Tensor] = {}
        if cfg.needs_teacher:
            conv, seq, valid = self.teacher_logits(ids, out.lengths, out.logits.shape[1])
            if cfg.conv_kd:
                terms["conv_kd"] = kd_kl(out.aux_logits, conv, valid, **kl)
            if cfg.lstm_kd:
                terms["lstm_kd"] = kd_kl(out.logits, seq, valid, **kl)
        if cfg.self_kd:
            terms["self_kd"] = kd_kl(out.aux_logits, out.logits, out.lengths, **kl)
        scale = self._glosses_per_sentence(ids)
        return {name: value / scale for name, value in terms.items()}

    def weighted(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        weights = self.config.weights()
        return sum(weights[name] * value for name, value in terms.items())  # type: ignore[return-value]

    def summary(self) -> str:
        terms = ", ".join(f"{t} x{w:g}" for t, w in self.config.weights().items())
        units = " per sentence (/ mean gloss count)" if self.config.per_gloss_units else ""
        return f"distillation: {terms}{units} at temperature {self.config.temperature:g}"

    def pop_stats(self) -> dict[str, int]:
        """Counts since the last call (per epoch), then reset."""
        stats, self.stats = self.stats, {"samples": 0, "mismatched": 0}
        return stats


def build_distiller(
    config: DistillConfig,
    *,
    data_root: str | Path,
    split: str,
    vocabulary: Any,
    student_dims: Any,
    cache_dir: str | Path,
    progress: bool = True,
    hardware: Any = None,
) -> Distiller | None:
    """The training loop's distiller (None when no term is on).

    ``config.teacher`` may be a teacher checkpoint (its outputs for ``split`` are cached in
    ``cache_dir``, reused while still valid) or a cache folder; either is checked against the
    dataset split and the student's vocabulary, and a teacher whose time axis differs from the
    student's is reported (its outputs are then aligned by ``length_policy``). Under torchrun
    (``hardware``) the outputs are computed on the training device, each rank a share.
    """
    if not config.enabled:
        return None
    teacher = None
    if config.needs_teacher:
        from edge_slr.training.teacher.cache import teacher_outputs
        from edge_slr.training.teacher.corrnet import TeacherDims

        cache = teacher_outputs(
            config.teacher,
            data_root,
            split,
            cache_dir=cache_dir,
            vocabulary=vocabulary,
            batch_size=config.cache_batch_size,
            progress=progress,
            hardware=hardware,
        )
        dims = TeacherDims.from_dict(cache.teacher_dims)
        differs = [t for t in range(student_dims.min_input_length, 600)
                   if dims.output_length(t) != student_dims.output_length(t)]  # fmt: skip
        if differs:
            logger.warning(
                "the teacher's time axis differs from the student's (e.g. %d frames: %d vs %d "
                "steps); outputs are aligned by %r",
                differs[0],
                dims.output_length(differs[0]),
                student_dims.output_length(differs[0]),
                config.length_policy,
            )
        teacher = cache.split(split)
    from edge_slr.data.dataset import LandmarkDataset

    counts = {e.id: len(e.glosses) for e in LandmarkDataset(data_root, split).samples}
    distiller = Distiller(config, teacher, gloss_counts=counts)
    logger.info(distiller.summary())
    return distiller
