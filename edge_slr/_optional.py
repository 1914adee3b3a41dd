"""Import optional heavy dependencies where they are used, with an install hint when missing.

This is also the one place that keeps the engines quiet. MediaPipe, TensorFlow, LiteRT and
OpenVINO write their own C++ log lines (``W0000 00:00:... inference_feedback_manager.cc:114]
...``, TensorFlow's start-up banner) straight to file descriptor 2, past Python's logging. Before
the first import of such a module :func:`require` sets the engines' log-level variables
(:data:`QUIET_ENV`; a value the user set is kept), and it imports them inside
:func:`native_logs_filtered`, which drops C++ log lines written to fd 2 meanwhile: MediaPipe's
absl logging reads no variable at all, so its calls (graph creation, frames, close) are wrapped
the same way where they are made. ``edge-slr -v`` (:func:`show_engine_logs`, or
``EDGE_SLR_ENGINE_LOGS=1``) shows everything again.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import re
import select
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from edge_slr.errors import MissingDependencyError

# module -> (pip extra that provides it, distribution name shown to the user)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("train", "torch"),
    "tqdm": ("train", "tqdm"),
    "matplotlib": ("train", "matplotlib"),
    "tensorflow": ("convert", "tensorflow"),
    "tf_keras": ("convert", "tf-keras"),
    "onnx": ("convert", "onnx"),
    "onnxscript": ("convert", "onnxscript"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("convert", "nncf"),
    "ai_edge_litert": ("tflite", "ai-edge-litert"),
    "mediapipe": ("mediapipe", "mediapipe"),
    "cv2": ("mediapipe", "opencv-contrib-python"),
    "pose_format": ("pose", "pose-format"),
    "pyarrow": ("pose", "pyarrow"),
    "tflite_runtime": ("tflite-runtime", "tflite-runtime"),
    "ray": ("cluster", "ray"),
    "fsspec": ("cluster", "fsspec"),
    "tf2onnx": ("convert", "tf2onnx"),
}


# Engine log levels, set (unless already set) before the first import of the module. They must
# come before the import: the C++ libraries read them once, when they load. Errors still show.
QUIET_ENV: dict[str, dict[str, str]] = {
    # TensorFlow's C++ logging (tsl): 2 hides INFO and WARNING (the AVX/oneDNN banner).
    "tensorflow": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    "tf_keras": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    "ai_edge_litert": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    # glog-based builds of MediaPipe read GLOG_minloglevel (2: errors); TensorFlow if it loads.
    "mediapipe": {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"},
    # OpenVINO reads TensorFlow models through the same TF logging when probing a file's format.
    "openvino": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    "nncf": {"TF_CPP_MIN_LOG_LEVEL": "2"},
}
ENGINE_LOGS_ENV = "EDGE_SLR_ENGINE_LOGS"  # "1": show the engines' own log lines

# C++ log lines: absl/glog ("W0000 00:00:1733.1 123 file.cc:114] ..."), TensorFlow's
# ("2024-01-01 10:00:00.123: I tensorflow/...cc:210] ..."), absl's first-line notice, TFLite's
# "INFO: Created TensorFlow Lite XNNPACK delegate" and the banner's continuation line.
_NATIVE_LOG = re.compile(
    r"(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)
_filter_depth = 0
_filter: _StderrFilter | None = None
_filter_lock = threading.Lock()
_exit_hook = False
_PUMP_WAIT_S = 0.05  # an unfinished line (a progress bar's "\r...") is passed on after this


def show_engine_logs(show: bool = True) -> None:
    """Let the engines' own C++ log lines through (``edge-slr -v``); child processes inherit."""
    if show:
        os.environ[ENGINE_LOGS_ENV] = "1"
    else:
        os.environ.pop(ENGINE_LOGS_ENV, None)


def engine_logs_shown() -> bool:
    return os.environ.get(ENGINE_LOGS_ENV, "") not in ("", "0")


def is_native_log_line(line: str) -> bool:
    """True for a log line of an engine's C++ code (see :data:`_NATIVE_LOG`)."""
    return _NATIVE_LOG.match(line.lstrip("\r")) is not None


class _StderrFilter:
    """fd 2 through a pipe: a thread passes on what is written, as it comes, less C++ log lines.

    MediaPipe's graph threads log whenever they like (a delegate created after the call that
    started the graph returned, warnings at the first frames), so the filter stays in place
    while a graph lives, not only around calls; Python's own stderr output (warnings, progress
    bars, tracebacks) goes through it without delay.
    """

    def __init__(self) -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        self._saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        self._thread = threading.Thread(target=self._pump, name="edge-slr-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            ready, _, _ = select.select([self._read], [], [], _PUMP_WAIT_S)
            if ready:
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    break
                pending += chunk
            pending = self._pass_on(pending, tail=not ready)
        self._pass_on(pending, tail=True)

    def _pass_on(self, data: bytes, tail: bool) -> bytes:
        """Write the finished lines of ``data`` (and, with ``tail``, the rest) except C++ log
        lines; returns what is kept back."""
        kept, start = [], 0
        for end in (m.end() for m in _LINE_END.finditer(data)):
            kept.append(data[start:end])
            start = end
        rest = data[start:]
        if tail and rest:
            kept.append(rest)
            rest = b""
        out = b"".join(k for k in kept if not is_native_log_line(k.decode("utf-8", "replace")))
        while out:  # os.write may write less than asked
            out = out[os.write(self._saved, out) :]
        return rest

    def close(self) -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self._saved, 2)  # drops the pipe's last write end here: the pump sees its end
        # a child process that inherited the pipe keeps it open: do not wait for it forever
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            os.close(self._read)
        os.close(self._saved)


_LINE_END = re.compile(rb"[\r\n]")


def hold_native_log_filter() -> Any:
    """Filter the engines' C++ log lines from stderr until ``.release()`` is called on the
    returned token (for as long as a MediaPipe graph lives); shared with
    :func:`native_logs_filtered`."""
    _acquire()
    return _Hold()


class _Hold:
    def __init__(self) -> None:
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            _release()


def _acquire() -> None:
    global _filter_depth, _filter, _exit_hook
    with _filter_lock:
        if _filter_depth == 0 and not engine_logs_shown():
            _filter = _StderrFilter()
            if not _exit_hook:  # the pump is a daemon thread: pass on what is left at exit
                atexit.register(_close_at_exit)
                _exit_hook = True
        _filter_depth += 1


def _close_at_exit() -> None:
    """At interpreter exit (a graph never closed): restore fd 2 and pass on what is pending,
    so a last error message is not lost with the pump thread."""
    global _filter
    with _filter_lock:
        if _filter is not None:
            _filter.close()
            _filter = None


def _release() -> None:
    global _filter_depth, _filter
    with _filter_lock:
        _filter_depth -= 1
        if _filter_depth == 0 and _filter is not None:
            _filter.close()
            _filter = None


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """While inside, the engines' C++ log lines written to fd 2 are dropped (unless
    :func:`engine_logs_shown`); everything else passes. Nested uses, and uses from several
    threads at once, share one filter (fd 2 is process-wide): the first to enter starts it, the
    last to leave stops it."""
    _acquire()
    try:
        yield
    finally:
        _release()


def _quiet_environment(top: str) -> None:
    if engine_logs_shown():
        return
    for name, value in QUIET_ENV.get(top, {}).items():
        os.environ.setdefault(name, value)


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    ``module`` may be dotted (``"openvino.runtime"``); the extra is looked up by its top level.
    A noisy engine (:data:`QUIET_ENV`) is imported with its log levels set and its C++ log
    lines filtered (see the module doc).
    """
    top = module.split(".")[0]
    try:
        loaded = sys.modules.get(module)
        if loaded is not None:
            return loaded
        if top not in QUIET_ENV:
            return importlib.import_module(module)
        _quiet_environment(top)
        with native_logs_filtered():
            return importlib.import_module(module)
    except ImportError as exc:
        extra, dist = EXTRAS.get(top, ("all", top))
        needed_for = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{dist} is required{needed_for} but could not be imported ({exc}). "
            f"Install it with: pip install 'edge-slr[{extra}]' -c constraints.txt"
        ) from exc


def is_available(module: str) -> bool:
    """True when ``module`` imports (a missing or broken install is False); imported like
    :func:`require`, so a noisy engine stays quiet."""
    try:
        require(module)
    except ImportError:
        return False
    return True
