"""The MSLR student: a 1D-CNN + BiLSTM CTC recogniser over landmark features.

Shape (KD-MSLRT, after VAC/CorrNet)::

    features (B, T, F)
      -> Conv1d k -> BN -> ReLU -> Conv1d k -> BN -> ReLU -> MaxPool 2
      -> Conv1d k -> BN -> ReLU -> Conv1d k -> BN -> ReLU -> MaxPool 2     "visual" features (B, T', C)
      -> pre-LSTM (identity | LayerNorm | Linear) -> BiLSTM              "sequence" features (B, T', 2H)
      -> classifier -> logits (B, T', V)           V = glosses + blank (index 0)

The auxiliary CTC head applies the *same* classifier to the convolutional features (VAC's shared
classifier), which forces the convolutional stack alone to produce gloss-discriminative features.

Why a pre-LSTM stage: after ReLU and max-pooling the LSTM input is all positive, and NNCF's default
INT8 quantisation of OpenVINO's LSTMSequence then breaks the decodes (see docs/engines.md). A
LayerNorm (or a linear projection) makes that input signed. It is stored in the dims, and a
checkpoint without the field loads as ``"none"``, so older checkpoints keep working.

Output lengths follow the receptive field exactly (no padding by default, pools floor), so a
sequence shorter than the receptive field cannot be recognised and raises InputError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from edge_slr._optional import require
from edge_slr.errors import InputError

if TYPE_CHECKING:
    import torch

PRE_LSTM_CHOICES = ("none", "layernorm", "linear")
PADDING_CHOICES = ("valid", "same")
# Field value assumed for checkpoints written before the field existed.
_LEGACY_DEFAULTS = {"pre_lstm": "none"}


class TwoBlockGeometry:
    """Time geometry of two temporal blocks (conv, conv, max-pool 2) = stride 4, shared by the
    student and the teacher so that their output steps line up for distillation. Subclasses
    define ``_shrink``: frames one block's convolutions lose (0 with 'same' padding)."""

    _shrink: int

    def output_length(self, num_frames: int) -> int:
        """Number of output steps for an input of ``num_frames`` (0 or less: too short)."""
        after_block1 = (num_frames - self._shrink) // 2
        return (after_block1 - self._shrink) // 2

    @property
    def min_input_length(self) -> int:
        """Shortest input that yields one output step (the receptive field with valid padding)."""
        # Invert output_length: block 2 needs 2 + shrink frames, block 1 twice that + shrink.
        return 2 * (2 + self._shrink) + self._shrink

    @property
    def downsampling(self) -> int:
        return 4


@dataclass(frozen=True)
class StudentDims(TwoBlockGeometry):
    """Sizes of the student. Stored in every checkpoint; the defaults are a CPU-friendly size.

    ``StudentDims.paper(num_classes)`` gives the paper's shape (about 5.7 M parameters).
    """

    num_classes: int
    input_dim: int = 276
    conv_channels: tuple[int, int, int, int] = (128, 128, 256, 256)
    kernel_size: int = 5
    padding: str = "valid"
    lstm_hidden: int = 128
    lstm_layers: int = 2
    dropout: float = 0.1
    pre_lstm: str = "layernorm"
    aux_head: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        if self.num_classes < 2:
            raise InputError(
                f"num_classes must be >= 2 (blank + one gloss), got {self.num_classes}"
            )
        if self.input_dim < 1:
            raise InputError(f"input_dim must be >= 1, got {self.input_dim}")
        if len(self.conv_channels) != 4 or min(self.conv_channels) < 1:
            raise InputError(
                f"conv_channels must be four positive sizes, got {list(self.conv_channels)}"
            )
        if self.kernel_size < 1:
            raise InputError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if self.padding not in PADDING_CHOICES:
            raise InputError(f"padding must be one of {PADDING_CHOICES}, got {self.padding!r}")
        if self.padding == "same" and self.kernel_size % 2 == 0:
            raise InputError(f"padding 'same' needs an odd kernel_size, got {self.kernel_size}")
        if self.lstm_hidden < 1 or self.lstm_layers < 1:
            raise InputError(
                f"lstm_hidden and lstm_layers must be >= 1, got {self.lstm_hidden}, "
                f"{self.lstm_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pre_lstm not in PRE_LSTM_CHOICES:
            raise InputError(f"pre_lstm must be one of {PRE_LSTM_CHOICES}, got {self.pre_lstm!r}")
        if self.aux_head and self.conv_channels[-1] != 2 * self.lstm_hidden:
            # The auxiliary head reuses the classifier, so both feature sizes must agree.
            raise InputError(
                f"aux_head shares the classifier, so conv_channels[-1] ({self.conv_channels[-1]}) "
                f"must equal 2 * lstm_hidden ({2 * self.lstm_hidden})"
            )

    @classmethod
    def paper(cls, num_classes: int, **overrides: Any) -> StudentDims:
        """The paper's size: conv 256/256/512/512, BiLSTM 2 x 256 per direction."""
        base: dict[str, Any] = dict(conv_channels=(256, 256, 512, 512), lstm_hidden=256)
        base.update(overrides)
        return cls(num_classes=num_classes, **base)

    # -- lengths -------------------------------------------------------------------------------
    @property
    def _shrink(self) -> int:
        """Frames lost by two stacked convolutions (0 with 'same' padding)."""
        return 0 if self.padding == "same" else 2 * (self.kernel_size - 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["conv_channels"] = list(self.conv_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentDims:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown student dims {sorted(unknown)}; known: {sorted(known)}")
        merged = {**_LEGACY_DEFAULTS, **data}
        return cls(**merged)


class StudentOutput(NamedTuple):
    logits: torch.Tensor  # (B, T', V) from the BiLSTM path
    aux_logits: torch.Tensor | None  # (B, T', V) from the conv features (shared classifier)
    lengths: torch.Tensor | None  # (B,) valid output steps, when input lengths were given


def build_student(dims: StudentDims) -> torch.nn.Module:
    """Create a freshly initialised :class:`StudentModel` (imports torch on first use)."""
    return _student_class()(dims)


def _student_class() -> type:
    torch = require("torch", "the student model")
    global _STUDENT_CLASS
    if _STUDENT_CLASS is None:
        _STUDENT_CLASS = _define_student(torch)
    return _STUDENT_CLASS


_STUDENT_CLASS: type | None = None


def _define_student(torch: Any) -> type:
    """Define the module classes once torch is importable (keeps ``import edge_slr`` light)."""
    nn = torch.nn
    module_base: Any = nn.Module  # a runtime base class: type checkers see Any

    def conv_block(c_in: int, c_out: int, dims: StudentDims) -> list[Any]:
        pad = (dims.kernel_size - 1) // 2 if dims.padding == "same" else 0
        return [
            nn.Conv1d(c_in, c_out, dims.kernel_size, padding=pad),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
        ]

    class StudentModel(module_base):
        def __init__(self, dims: StudentDims) -> None:
            super().__init__()
            self.dims = dims
            c1, c2, c3, c4 = dims.conv_channels
            self.conv = nn.Sequential(
                *conv_block(dims.input_dim, c1, dims),
                *conv_block(c1, c2, dims),
                nn.MaxPool1d(2, 2),
                *conv_block(c2, c3, dims),
                *conv_block(c3, c4, dims),
                nn.MaxPool1d(2, 2),
            )
            if dims.pre_lstm == "layernorm":
                self.pre_lstm: Any = nn.LayerNorm(c4)
            elif dims.pre_lstm == "linear":
                self.pre_lstm = nn.Linear(c4, c4)
            else:
                self.pre_lstm = nn.Identity()
            self.dropout = nn.Dropout(dims.dropout)
            self.lstm = nn.LSTM(
                c4,
                dims.lstm_hidden,
                num_layers=dims.lstm_layers,
                bidirectional=True,
                batch_first=True,
                dropout=dims.dropout if dims.lstm_layers > 1 else 0.0,
            )
            self.classifier = nn.Linear(2 * dims.lstm_hidden, dims.num_classes)

        def check_input(self, features: torch.Tensor, lengths: torch.Tensor | None) -> None:
            """Raise InputError for a wrong shape or a sequence shorter than the receptive field."""
            if features.dim() != 3 or features.shape[-1] != self.dims.input_dim:
                raise InputError(
                    f"student input must be (batch, frames, {self.dims.input_dim}), "
                    f"got {tuple(features.shape)}"
                )
            shortest = int(features.shape[1]) if lengths is None else int(lengths.min())
            if shortest < self.dims.min_input_length:
                raise InputError(
                    f"sequence of {shortest} frames is shorter than the student's receptive "
                    f"field: at least {self.dims.min_input_length} frames are needed "
                    f"(kernel {self.dims.kernel_size}, padding {self.dims.padding!r})"
                )
            if lengths is not None and (
                lengths.shape != (features.shape[0],) or int(lengths.max()) > features.shape[1]
            ):
                raise InputError(
                    f"lengths must be ({features.shape[0]},) and <= {features.shape[1]}, "
                    f"got shape {tuple(lengths.shape)} max {int(lengths.max())}"
                )

        def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
            shrink = self.dims._shrink
            return torch.div(
                torch.div(lengths - shrink, 2, rounding_mode="floor") - shrink,
                2,
                rounding_mode="floor",
            )

        def forward(
            self, features: torch.Tensor, lengths: torch.Tensor | None = None, aux: bool = True
        ) -> StudentOutput:
            """``features`` (B, T, F) float; ``lengths`` (B,) int64 valid frames for padded batches.

            Without lengths (export, batch of one) every frame is valid and no packing is used,
            so the traced graph has no data-dependent control flow.
            """
            if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
                self.check_input(features, lengths)
            visual = self.conv(features.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
            x = self.dropout(self.pre_lstm(visual))
            out_lengths = None
            if lengths is None:
                seq, _ = self.lstm(x)
            else:
                # Packing keeps padding out of the backward direction of the BiLSTM.
                out_lengths = self.output_lengths(lengths)
                packed = nn.utils.rnn.pack_padded_sequence(
                    x, out_lengths.cpu(), batch_first=True, enforce_sorted=False
                )
                seq, _ = self.lstm(packed)
                seq, _ = nn.utils.rnn.pad_packed_sequence(
                    seq, batch_first=True, total_length=x.shape[1]
                )
            logits = self.classifier(self.dropout(seq))
            aux_logits = None
            if aux and self.dims.aux_head:
                aux_logits = self.classifier(self.dropout(visual))
            return StudentOutput(logits, aux_logits, out_lengths)

        def num_parameters(self) -> int:
            return sum(p.numel() for p in self.parameters())

        def for_export(self, log_probs: bool = True) -> Any:
            """A wrapper whose ``forward(features (B, T, F)) -> (B, T', V)`` suits ONNX/TFLite.

            Logits (``log_probs=False``) suit engines whose INT8 log_softmax clips the tails.
            The wrapper (and this model) are put in eval mode.
            """
            return _ExportWrapper(self, log_probs).eval()

    class _ExportWrapper(module_base):
        def __init__(self, model: Any, log_probs: bool) -> None:
            super().__init__()
            self.model = model
            self.log_probs = log_probs

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            logits = self.model(features, None, aux=False).logits
            return torch.log_softmax(logits, dim=-1) if self.log_probs else logits

    # Readable names in reprs and pickles, as if defined at module level.
    for cls in (StudentModel, _ExportWrapper):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return StudentModel


def __getattr__(name: str) -> Any:
    # `from edge_slr.training.models import StudentModel` works, importing torch only then.
    if name == "StudentModel":
        return _student_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
