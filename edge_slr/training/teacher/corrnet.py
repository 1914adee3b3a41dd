"""The video teacher: a CorrNet-style network (Hu et al., CVPR 2023), written here.

::

    frames (B, T, H, W, 3) uint8
      -> 2D ResNet-18 per frame, with a correlation block after stages 2, 3 and 4 ("corr_stages")
      -> global average pool                                           (B, T, C)
      -> temporal conv K5-P2-K5-P2 (stride 4)                           "conv" features (B, T', D)
      -> 2-layer BiLSTM                                                 "sequence" features
      -> shared classifier (cosine-normalised weights, as VAC)         logits (B, T', V)

A correlation block (edge_slr.training.teacher.correlation) adds
``alpha * correlation(x) * identification(x)`` to a stage's output: frame-to-neighbour
affinities that follow the hands across frames, times a multi-scale spatial attention map.
The backbone runs on the valid frames only (flattened), and the temporal parts see each
sequence's own frames, so a sample's output does not depend on what else is in the batch.

Time axis. ``edge_trim`` frames (steps) are dropped at both ends before each K5-P2, so that the
teacher's output step j covers exactly the frames of the student's step j (kernel 5, "valid":
each student block loses 8 frames, a K5 loses 4, plus 2 x 2 trimmed). ``edge_trim_for`` gives
the value for other student kernels; with it, teacher and student output lengths are equal for
every input length and distillation needs no resampling.

Losses (CorrNet/VAC): CTC on the BiLSTM head + CTC on the conv head + 25 x self-distillation
(BiLSTM head -> conv head, temperature 8, blank left out), see :func:`corrnet_loss`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from edge_slr._optional import require
from edge_slr.errors import InputError
from edge_slr.training.models import TwoBlockGeometry
from edge_slr.training.teacher.correlation import correlation_classes
from edge_slr.training.teacher.resnet import STEMS, build_resnet18, spatial_size, stage_channels

if TYPE_CHECKING:
    import torch

PADDINGS = ("valid", "same")
# ImageNet statistics: the usual input normalisation, right for torchvision weights too.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def edge_trim_for(student_kernel: int, student_padding: str = "valid") -> int:
    """The ``edge_trim`` that gives the time axis of a student with this kernel and padding."""
    if student_padding == "same":
        return 0
    if student_kernel < 3:
        raise InputError(
            f"a K5 teacher cannot match a student kernel below 3, got {student_kernel}"
        )
    return student_kernel - 3  # 2 * (k - 1) frames per student block = 4 (K5) + 2 * trim


@dataclass(frozen=True)
class TeacherDims(TwoBlockGeometry):
    """Sizes of the teacher; stored in its checkpoint."""

    num_classes: int
    input_size: int = 64  # square frames, pixels
    width: float = 0.25  # ResNet-18 width multiplier
    stem: str = "small"
    corr_stages: tuple[int, ...] = (2, 3, 4)
    corr_reduction: int = 16  # identification channels = max(4, C // reduction)
    temporal_kernel: int = 5
    temporal_padding: str = "valid"
    edge_trim: int = 2  # matches the default student (kernel 5, valid padding)
    hidden: int = 256  # temporal conv channels = 2 * lstm_hidden (shared classifier)
    lstm_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "corr_stages", tuple(int(s) for s in self.corr_stages))
        if self.num_classes < 2:
            raise InputError(f"num_classes must be >= 2 (blank + a gloss), got {self.num_classes}")
        if not 16 <= self.input_size <= 512:
            raise InputError(f"input_size must be in [16, 512] pixels, got {self.input_size}")
        stage_channels(self.width)  # raises for a bad multiplier
        if self.stem not in STEMS:
            raise InputError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if any(s not in (1, 2, 3, 4) for s in self.corr_stages) or len(
            set(self.corr_stages)
        ) != len(self.corr_stages):
            raise InputError(f"corr_stages must be distinct stages 1..4, got {self.corr_stages}")
        if self.corr_reduction < 1:
            raise InputError(f"corr_reduction must be >= 1, got {self.corr_reduction}")
        if self.temporal_kernel < 1 or self.temporal_padding not in PADDINGS:
            raise InputError(
                f"temporal_kernel must be >= 1 and temporal_padding one of {PADDINGS}, got "
                f"{self.temporal_kernel}, {self.temporal_padding!r}"
            )
        if self.temporal_padding == "same" and (self.temporal_kernel % 2 == 0 or self.edge_trim):
            raise InputError("temporal_padding 'same' needs an odd kernel and edge_trim 0")
        if self.edge_trim < 0:
            raise InputError(f"edge_trim must be >= 0, got {self.edge_trim}")
        if self.hidden < 2 or self.hidden % 2 or self.lstm_layers < 1:
            raise InputError(
                f"hidden must be an even size >= 2 and lstm_layers >= 1, got {self.hidden}, "
                f"{self.lstm_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        if spatial_size(self.input_size, self.stem, 4) < 1:
            raise InputError(f"input_size {self.input_size} is too small for the backbone")

    @property
    def channels(self) -> tuple[int, int, int, int]:
        return stage_channels(self.width)

    @property
    def _shrink(self) -> int:
        """Frames (steps) lost per temporal block."""
        return (
            0 if self.temporal_padding == "same" else self.temporal_kernel - 1 + 2 * self.edge_trim
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["corr_stages"] = list(self.corr_stages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeacherDims:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown teacher dims {sorted(unknown)}")
        return cls(**data)


class TeacherOutput(NamedTuple):
    logits: torch.Tensor  # (B, T', V) BiLSTM head
    conv_logits: torch.Tensor  # (B, T', V) conv head (same classifier)
    lengths: torch.Tensor  # (B,) valid output steps


def build_teacher(dims: TeacherDims) -> torch.nn.Module:
    """A freshly initialised :class:`TeacherModel` (imports torch on first use)."""
    return _classes()["TeacherModel"](dims)


def corrnet_loss(
    out: TeacherOutput,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    *,
    conv_weight: float = 1.0,
    self_kd_weight: float = 25.0,
    temperature: float = 8.0,
    include_blank: bool = False,
) -> dict[str, torch.Tensor]:
    """CorrNet's training loss: sequence CTC + conv CTC + self-distillation; "total" included."""
    torch = require("torch", "the teacher loss")
    from edge_slr.training.distill import kd_kl

    def ctc(logits: Any) -> Any:
        return torch.nn.functional.ctc_loss(
            logits.log_softmax(-1).transpose(0, 1),
            targets,
            out.lengths,
            target_lengths,
            blank=0,
            reduction="mean",
            zero_infinity=True,
        )

    terms = {"seq_ctc": ctc(out.logits), "conv_ctc": ctc(out.conv_logits)}
    terms["self_kd"] = kd_kl(
        out.conv_logits,
        out.logits,
        out.lengths,
        temperature=temperature,
        include_blank=include_blank,
    )
    terms["total"] = (
        terms["seq_ctc"] + conv_weight * terms["conv_ctc"] + self_kd_weight * terms["self_kd"]
    )
    return terms


# -- modules ----------------------------------------------------------------------------------
@functools.cache  # the classes are defined once, on first use, so torch loads only then
def _classes() -> dict[str, type]:
    return _define(require("torch", "the video teacher"))


def _define(torch: Any) -> dict[str, type]:
    nn, F = torch.nn, torch.nn.functional
    module_base: Any = nn.Module  # a runtime base class: type checkers see Any
    CorrelationBlock = correlation_classes()["CorrelationBlock"]  # noqa: N806 - a class

    class NormLinear(module_base):
        """Linear layer with unit-norm class vectors (VAC's classifier); no bias."""

        def __init__(self, in_features: int, num_classes: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(in_features, num_classes))
            nn.init.xavier_uniform_(self.weight, gain=nn.init.calculate_gain("relu"))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ F.normalize(self.weight, dim=0)

    class TemporalConv(module_base):
        """K-P2-K-P2 over time, with ``edge_trim`` steps dropped before each convolution."""

        def __init__(self, c_in: int, dims: TeacherDims) -> None:
            super().__init__()
            self.dims = dims
            pad = (dims.temporal_kernel - 1) // 2 if dims.temporal_padding == "same" else 0
            layers = []
            for c in (c_in, dims.hidden):
                layers.append(
                    nn.Sequential(
                        nn.Conv1d(c, dims.hidden, dims.temporal_kernel, padding=pad),
                        nn.BatchNorm1d(dims.hidden),
                        nn.ReLU(inplace=True),
                        nn.MaxPool1d(2, 2),
                    )
                )
            self.blocks = nn.ModuleList(layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(B, C, T) -> (B, hidden, T'); only the first output_length(L) steps are valid."""
            trim = self.dims.edge_trim
            for block in self.blocks:
                # Cutting the padded tensor at both ends is right for every row: a shorter
                # sequence loses padding at the back, and output_length drops its last steps.
                x = block(x[:, :, trim : x.shape[2] - trim])
            return x

    class TeacherModel(module_base):
        def __init__(self, dims: TeacherDims) -> None:
            super().__init__()
            self.dims = dims
            self.backbone = build_resnet18(dims.width, dims.stem)
            self.correlations = nn.ModuleDict(
                {
                    str(s): CorrelationBlock(dims.channels[s - 1], dims.corr_reduction)
                    for s in dims.corr_stages
                }
            )
            self.temporal = TemporalConv(dims.channels[-1], dims)
            self.dropout = nn.Dropout(dims.dropout)
            self.lstm = nn.LSTM(
                dims.hidden,
                dims.hidden // 2,
                num_layers=dims.lstm_layers,
                bidirectional=True,
                batch_first=True,
                dropout=dims.dropout if dims.lstm_layers > 1 else 0.0,
            )
            self.classifier = NormLinear(dims.hidden, dims.num_classes)
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

        def num_parameters(self) -> int:
            return sum(p.numel() for p in self.parameters())

        def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
            shrink = self.dims._shrink
            half = torch.div(lengths - shrink, 2, rounding_mode="floor")
            return torch.div(half - shrink, 2, rounding_mode="floor")

        def check_input(self, frames: torch.Tensor, lengths: torch.Tensor) -> None:
            size = self.dims.input_size
            if frames.dim() != 5 or tuple(frames.shape[2:]) != (size, size, 3):
                raise InputError(
                    f"teacher input must be frames (batch, time, {size}, {size}, 3), "
                    f"got {tuple(frames.shape)}"
                )
            if lengths.shape != (frames.shape[0],) or int(lengths.max()) > frames.shape[1]:
                raise InputError(
                    f"lengths must be ({frames.shape[0]},) and <= {frames.shape[1]}, got "
                    f"shape {tuple(lengths.shape)}, max {int(lengths.max())}"
                )
            if int(lengths.min()) < self.dims.min_input_length:
                raise InputError(
                    f"sequence of {int(lengths.min())} frames is shorter than the teacher's "
                    f"receptive field ({self.dims.min_input_length} frames)"
                )

        def frame_features(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            """Per-frame backbone features of the valid frames, padded to (B, C, T)."""
            mask = torch.arange(frames.shape[1])[None] < lengths[:, None]
            x = frames[mask].permute(0, 3, 1, 2)  # (N, 3, H, W), valid frames only
            x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
            backbone: Any = self.backbone
            x = backbone.stem((x - self.mean) / self.std)
            for number, stage in enumerate(backbone.stages, start=1):
                x = stage(x)
                if str(number) in self.correlations:
                    x = self.correlations[str(number)](x, lengths)
            pooled = x.mean(dim=(2, 3))  # (N, C)
            padded = pooled.new_zeros(len(lengths), frames.shape[1], pooled.shape[1])
            padded[mask] = pooled
            return padded.transpose(1, 2)

        def forward(
            self, frames: torch.Tensor, lengths: torch.Tensor | None = None
        ) -> TeacherOutput:
            """``frames`` (B, T, H, W, 3): uint8 RGB, or float in [0, 1]; ``lengths`` (B,)."""
            if lengths is None:
                lengths = torch.full((frames.shape[0],), frames.shape[1], dtype=torch.int64)
            self.check_input(frames, lengths)
            visual = self.temporal(self.frame_features(frames, lengths)).transpose(1, 2)
            out_lengths = self.output_lengths(lengths)
            packed = nn.utils.rnn.pack_padded_sequence(
                self.dropout(visual), out_lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            seq, _ = self.lstm(packed)
            seq, _ = nn.utils.rnn.pad_packed_sequence(
                seq, batch_first=True, total_length=visual.shape[1]
            )
            logits = self.classifier(self.dropout(seq))
            conv_logits = self.classifier(self.dropout(visual))
            return TeacherOutput(logits, conv_logits, out_lengths)

    classes = {
        "NormLinear": NormLinear,
        "TemporalConv": TemporalConv,
        "TeacherModel": TeacherModel,
    }
    for cls in classes.values():
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return classes


def __getattr__(name: str) -> Any:
    if name == "TeacherModel":
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
