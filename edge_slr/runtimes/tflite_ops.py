"""Which builtin ops (and op versions) a ``.tflite`` file uses, and the oldest interpreter for them.

An interpreter refuses a model that holds an op *version* newer than its kernels ("Didn't find op
for builtin opcode 'FULLY_CONNECTED' version '12'"), and only when it loads it, on the device.
This module reads the op codes straight from the flatbuffer and looks each (op, version) up in the
table of TensorFlow's ``tensorflow/lite/tools/versioning/runtime_version.cc`` (the release that
first ran it), so that a converter can record the minimum release in the sidecar and a runtime
can refuse an incompatible model with one line before the engine fails.

The flatbuffer is parsed here with the standard library only (the ``tflite`` package on PyPI, 2.18,
resolves with our pins but would add it and ``flatbuffers`` to every device install for three
fields): ``Model.operator_codes`` -> ``OperatorCode`` (``deprecated_builtin_code`` int8,
``version`` int32 default 1, ``builtin_code`` int32; the op is the larger of the two codes, as
in TFLite's ``GetBuiltinCode``), and the ``min_runtime_version`` metadata the converter writes.

Release numbers are TensorFlow's (tflite-runtime 2.14.0 = TensorFlow 2.14). ai-edge-litert
counts its own releases from 1.0 (cut from TensorFlow 2.18's TFLite, then newer), so no TensorFlow
release can be derived from its version: its models are not refused here, the engine decides.
This module is device side: standard library and edge_slr.errors only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from edge_slr.errors import FormatError

# BuiltinOperator enum of the TFLite schema (schema.fbs, TensorFlow 2.18), by code.
_BUILTIN_TEXT = """
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
    EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
    LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
    RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM
    CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND
    SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
    BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM
    CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT
    SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT
    SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND
    LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE
    RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL
    REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE
    MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5
    SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM
    CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND
    HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE
    ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL
    GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
    UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
"""
BUILTIN_NAMES = tuple(_BUILTIN_TEXT.split())


@dataclass(frozen=True, order=True)
class OpVersion:
    """One builtin op code of a model: its name, version and the first release that runs it."""

    name: str
    version: int
    min_runtime: str | None  # None: not in the table (the engine decides)

    def to_dict(self) -> dict[str, object]:
        return {"op": self.name, "version": self.version, "min_runtime": self.min_runtime}


def op_name(code: int) -> str:
    return BUILTIN_NAMES[code] if 0 <= code < len(BUILTIN_NAMES) else f"BUILTIN_{code}"


# -- flatbuffer reading (schema.fbs: Model, OperatorCode, Metadata, Buffer) --------------------------


class _Reader:
    """Bounds-checked reads of flatbuffer tables, vectors and strings."""

    def __init__(self, data: bytes, path: str | Path) -> None:
        self.data, self.path = data, path

    def fail(self, what: str) -> FormatError:
        return FormatError(self.path, f"not a readable TFLite flatbuffer ({what})")

    def unpack(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise self.fail(f"offset {pos} outside the {len(self.data)}-byte file")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def field(self, table: int, index: int) -> int:
        """Absolute position of a table's field ``index``, 0 when absent (default value)."""
        vtable = table - self.unpack("<i", table)
        vtable_size = self.unpack("<H", vtable)
        entry = 4 + 2 * index
        if entry >= vtable_size:
            return 0
        offset = self.unpack("<H", vtable + entry)
        return table + offset if offset else 0

    def scalar(self, table: int, index: int, fmt: str, default: int) -> int:
        pos = self.field(table, index)
        return self.unpack(fmt, pos) if pos else default

    def target(self, table: int, index: int) -> int:
        """Position of the vector, string or table that field ``index`` points to (0: absent)."""
        pos = self.field(table, index)
        return pos + self.unpack("<I", pos) if pos else 0

    def tables(self, table: int, index: int) -> list[int]:
        vector = self.target(table, index)
        if not vector:
            return []
        count = self.unpack("<I", vector)
        if count > len(self.data) // 4:
            raise self.fail(f"a vector of {count} entries")
        items = [vector + 4 + 4 * i for i in range(count)]
        return [item + self.unpack("<I", item) for item in items]

    def bytes_at(self, vector: int) -> bytes:
        size = self.unpack("<I", vector)
        if vector + 4 + size > len(self.data):
            raise self.fail(f"a {size}-byte field at offset {vector}")
        return self.data[vector + 4 : vector + 4 + size]


def _model(data: bytes, path: str | Path) -> tuple[_Reader, int]:
    reader = _Reader(data, path)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise FormatError(
            path, f"not a TFLite model: expected the TFL3 file identifier, got {data[4:8]!r}"
        )
    return reader, reader.unpack("<I", 0)


def _read(model: str | Path | bytes) -> tuple[bytes, str | Path]:
    if isinstance(model, bytes):
        return model, "<tflite bytes>"
    try:
        return Path(model).read_bytes(), model
    except OSError as err:
        raise FormatError(model, f"cannot read the model file: {err}") from err


def read_op_codes(model: str | Path | bytes) -> tuple[OpVersion, ...]:
    """Every builtin op code of a ``.tflite`` file (path or bytes), sorted by name and version.

    These are exactly the kernels an interpreter must resolve to load the model. Custom ops are
    listed as ``CUSTOM:<name>``.
    """
    data, path = _read(model)
    reader, root = _model(data, path)
    found = set()
    for code in reader.tables(root, 1):  # Model.operator_codes
        deprecated = reader.scalar(code, 0, "<b", 0)
        version = reader.scalar(code, 2, "<i", 1)
        builtin = max(deprecated, reader.scalar(code, 3, "<i", 0))
        name = op_name(builtin)
        if name == "CUSTOM":
            custom = reader.target(code, 1)
            name = (
                f"CUSTOM:{reader.bytes_at(custom).decode('utf-8', 'replace')}" if custom else name
            )
        found.add(OpVersion(name, version, min_runtime_for(name, version)))
    return tuple(sorted(found))


def converter_min_runtime(model: str | Path | bytes) -> str | None:
    """The ``min_runtime_version`` metadata the TFLite converter wrote, if any."""
    data, path = _read(model)
    reader, root = _model(data, path)
    buffers = reader.tables(root, 4)  # Model.buffers
    for entry in reader.tables(root, 6):  # Model.metadata
        name = reader.target(entry, 0)
        if not name or reader.bytes_at(name) != b"min_runtime_version":
            continue
        index = reader.scalar(entry, 1, "<I", 0)
        if index >= len(buffers):
            raise reader.fail(f"metadata buffer {index} of {len(buffers)}")
        payload = reader.target(buffers[index], 0)
        text = reader.bytes_at(payload).rstrip(b"\0").decode("ascii", "replace") if payload else ""
        return text or None
    return None


# -- the oldest release per (op, version) ----------------------------------------------------------

# From TensorFlow's tensorflow/lite/tools/versioning/runtime_version.cc (LiteRT's copy, 2025: it
# goes up to TensorFlow 2.20) for the ops the student and corrector conversions emit and their
# usual neighbours: op -> the first release of versions 1, 2, ... ("" = that version never
# existed). An (op, version) not listed is unknown here (None): the engine decides.
_RELEASES_TEXT = """
ABS 1.13.0 2.4.0 2.5.0 2.6.0 2.12.0
ADD 1.5.0 1.14.0 2.4.0 2.6.0 2.13.0
ADD_N 1.14.0
ARG_MAX 1.9.0 1.14.0 2.9.0
ARG_MIN 1.9.0 1.14.0 2.9.0
ASSIGN_VARIABLE 2.6.0
AVERAGE_POOL_2D 1.5.0 1.14.0 2.3.0
BATCH_MATMUL 2.3.0 2.3.0 2.4.0 2.5.0
BATCH_TO_SPACE_ND 1.6.0 1.14.0 2.3.0 2.12.0
BIDIRECTIONAL_SEQUENCE_LSTM 1.14.0 1.14.0 1.14.0
BROADCAST_ARGS 2.6.0
BROADCAST_TO - 2.5.0 2.5.0
CALL_ONCE 2.5.0
CAST 1.5.0 2.7.0 2.8.0 2.9.0 2.12.0 2.15.0 2.17.0
CEIL 1.14.0
CONCATENATION 1.5.0 1.14.0 2.3.0 2.14.0
CONV_2D 1.5.0 1.14.0 1.14.0 2.3.0 2.4.0 2.9.0 2.11.0 2.15.0
COS 1.14.0
CUMSUM 2.4.0
DEPTHWISE_CONV_2D 1.5.0 1.12.0 1.14.0 2.2.0 2.3.0 2.3.0 2.11.0
DEQUANTIZE 1.13.1 1.14.0 1.15.0 2.2.0 2.7.0 2.18.0
DIV 1.6.0 2.3.0
DYNAMIC_UPDATE_SLICE 2.9.0 2.17.0 2.19.0 2.20.0
ELU 1.14.0
EMBEDDING_LOOKUP 1.13.0 1.14.0 1.14.0 2.18.0
EQUAL 1.14.0 1.14.0 2.3.0 2.13.0
EXP 1.7.0 2.12.0
EXPAND_DIMS 1.10.0
FILL 1.13.0 2.3.0 2.5.0 2.12.0
FLOOR 1.9.0
FLOOR_DIV 1.14.0 1.14.0 2.13.0
FLOOR_MOD 1.13.0 2.13.0
FULLY_CONNECTED 1.5.0 1.10.0 1.14.0 1.14.0 2.0.0 2.1.0 2.3.0 2.3.0 2.3.0 2.11.0 2.15.0 2.17.0 2.18.0
GATHER 1.6.0 1.14.0 1.15.0 2.4.0 2.5.0 2.13.0 2.15.0
GATHER_ND 1.14.0 2.3.0 2.5.0 2.13.0 2.16.0
GELU 2.9.0 2.9.0
GREATER 1.14.0 1.14.0
GREATER_EQUAL 1.14.0 1.14.0 2.13.0
HARD_SWISH 1.15.0
IF 1.15.0
LEAKY_RELU 1.13.1 2.3.0
LESS 1.14.0 1.14.0 2.13.0
LESS_EQUAL 1.14.0 1.14.0
LOG 1.14.0 2.15.0
LOGICAL_AND 1.11.0
LOGICAL_NOT 1.11.0
LOGICAL_OR 1.11.0
LOGISTIC 1.14.0 1.14.0 2.3.0
LOG_SOFTMAX 1.14.0 1.14.0
LSTM 1.7.0 1.10.0 1.14.0 2.3.0
MAXIMUM 1.14.0 1.14.0 2.3.0 2.3.0
MAX_POOL_2D 1.5.0 1.14.0 2.3.0
MEAN 1.6.0 1.14.0 2.4.0
MINIMUM 1.14.0 1.14.0 2.3.0 2.3.0
MIRROR_PAD 1.13.1 2.3.0 2.12.0
MUL 1.5.0 1.14.0 1.15.0 2.3.0 2.6.0 2.11.0 2.13.0
NEG 1.9.0
NOT_EQUAL 1.14.0 1.14.0 2.3.0
ONE_HOT 1.11.0
PACK 1.11.0 1.14.0 2.3.0 2.13.0
PAD 1.5.0 1.14.0 2.4.0 2.6.0
PADV2 1.9.0 1.14.0 2.4.0 2.6.0
POW 1.10.0
PRELU 1.8.0
QUANTIZE 1.14.0 1.15.0 2.7.0
RANGE 1.13.0 2.14.0
READ_VARIABLE 2.6.0
REDUCE_MAX 1.11.0 1.14.0 2.5.0
REDUCE_MIN 1.11.0 1.14.0 2.5.0
REDUCE_PROD 1.11.0 2.6.0
RELU 1.5.0 2.1.0 2.5.0
RELU6 1.5.0 1.14.0 2.5.0
RESHAPE 1.5.0
REVERSE_V2 1.14.0 2.2.0 2.5.0
RNN 1.5.0 1.14.0 2.3.0
ROUND 1.14.0
RSQRT 1.10.0 2.5.0 2.15.0
SELECT 1.14.0 1.14.0 2.12.0 2.12.0
SELECT_V2 2.2.0 2.12.0
SHAPE 1.10.0
SIN 1.9.0
SLICE 1.14.0 1.14.0 1.14.0 2.4.0 2.5.0 2.14.0
SOFTMAX 1.5.0 1.14.0 2.3.0
SPACE_TO_BATCH_ND 1.6.0 1.14.0 2.3.0 2.12.0
SPLIT 1.5.0 1.14.0 1.14.0 2.3.0
SPLIT_V 1.13.1 2.3.0
SQRT 1.10.0
SQUARE 1.12.0
SQUARED_DIFFERENCE 1.13.1 2.5.0
SQUEEZE 1.6.0 2.5.0
STRIDED_SLICE 1.6.0 1.14.0 2.1.0 2.2.0 2.5.0 2.6.0 2.14.0 2.14.0
SUB 1.6.0 1.14.0 2.3.0 2.4.0 2.4.0
SUM 1.10.0 1.15.0
TANH 1.14.0 1.14.0 2.3.0
TILE 1.10.1 2.2.0 2.8.0
TOPK_V2 1.7.0 1.14.0 2.13.0
TRANSPOSE 1.6.0 1.14.0 1.15.0 2.3.0 2.4.0 2.12.0 2.14.4
UNIDIRECTIONAL_SEQUENCE_LSTM 1.13.1 1.14.0 2.3.0 2.12.0
UNPACK 1.11.0 1.14.0 2.2.0 2.3.0
VAR_HANDLE 2.6.0
WHERE 1.14.0 2.8.0
WHILE 1.15.0
ZEROS_LIKE 1.12.0
"""
RELEASES: dict[str, tuple[str, ...]] = {
    line.split()[0]: tuple("" if r == "-" else r for r in line.split()[1:])
    for line in _RELEASES_TEXT.strip().splitlines()
}


def release_key(release: str) -> tuple[int, ...]:
    """ "2.14.0" -> (2, 14, 0); trailing non-digits ("2.14.0rc1", "2.19.1+cpu") are dropped."""
    parts = []
    for part in release.split(".")[:3]:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ValueError(f"not a release number: {release!r}")
    return tuple(parts + [0] * (3 - len(parts)))


def min_runtime_for(name: str, version: int) -> str | None:
    """The first TFLite release that runs ``version`` of builtin op ``name`` (None: unknown)."""
    releases = RELEASES.get(name, ())
    if 1 <= version <= len(releases) and releases[version - 1]:
        return releases[version - 1]
    return None


def min_runtime(ops: tuple[OpVersion, ...] | list[OpVersion]) -> str | None:
    """The oldest release that runs every op with a known release (None: none known)."""
    known = [op.min_runtime for op in ops if op.min_runtime]
    return max(known, key=release_key) if known else None


def newer_ops(ops: tuple[OpVersion, ...] | list[OpVersion], release: str) -> list[OpVersion]:
    """The ops that need a release newer than ``release``, the newest first."""
    have = release_key(release)
    needing = [op for op in ops if op.min_runtime and release_key(op.min_runtime) > have]
    return sorted(needing, key=lambda op: release_key(op.min_runtime or "0"), reverse=True)


def check_runtime(
    model: str | Path | bytes,
    release: str,
    interpreter: str,
    ops: tuple[OpVersion, ...] | None = None,
) -> None:
    """Refuse, with one line, a model holding an op version newer than TFLite ``release``.

    ``interpreter`` names the interpreter in the message ("tflite_runtime 2.14.0"). The check is
    made before the engine loads the model, whose own error comes late and names no release.
    """
    ops = read_op_codes(model) if ops is None else ops
    needing = newer_ops(ops, release)
    if not needing:
        return
    op = needing[0]
    others = f" (and {len(needing) - 1} more op(s))" if len(needing) > 1 else ""
    path = "<tflite bytes>" if isinstance(model, bytes) else model
    raise FormatError(
        path,
        f"{op.name} version {op.version}{others} needs TFLite {op.min_runtime} or newer, but "
        f"this interpreter is {interpreter} (TFLite {release}); run it on ai-edge-litert, or "
        f"convert with --compat tflite-runtime-{'.'.join(release.split('.')[:2])}",
    )
