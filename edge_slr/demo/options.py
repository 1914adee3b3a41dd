"""What ``edge-slr demo`` does: one frozen, validated set of options, and where the data comes from.

Sizes are small on purpose: the whole chain (data, student, corrector, conversion, recognition,
benchmark) must finish in a few minutes on 2 CPU cores. Every option that changes a stage's
output is part of that stage's cache key (:mod:`edge_slr.demo.stages`), so changing one re-runs
exactly the stages it affects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_slr.errors import InputError

DEFAULT_WORK_DIR = Path("runs/demo")
CORPUS_CHOICES = ("auto", "builtin", "phoenix2014t", "phoenix2014", "csl-daily")
VIDEO_CANDIDATES = ("video/webcam_signer.mp4", "video/autsl_signer0_sample1000_color.mp4")


@dataclass(frozen=True)
class DemoOptions:
    """Options of the demo; see ``edge-slr demo --help`` for each one."""

    work_dir: Path = DEFAULT_WORK_DIR
    shared: Path | None = None  # real-data folder; None: EDGE_SLR_SHARED_DATA or ../shared/data
    use_shared: bool = True  # False: behave as on a bare machine (built-in sentences, no video)
    corpus: str = "auto"  # auto: PHOENIX-2014-T when found, else the built-in grammar
    corpus_root: Path | None = None  # a user's corpus folder (release layout)
    # dataset
    glosses: int = 80  # vocabulary: the most frequent train glosses
    train_sentences: int = 600
    eval_sentences: int = 100  # per dev/test split
    signers: int = 4  # synthetic signers per split
    difficulty: str = "default"
    # student
    width: int = 64  # conv channels (w, w, 2w, 2w), BiLSTM hidden w per direction
    epochs: int = 10
    batch_size: int = 4
    # corrector
    corrector_width: int = 64  # d_model
    corrector_minutes: float = 0.5  # training budget per stage (two stages)
    # conversion, recognition, benchmark
    targets: tuple[str, ...] = ("openvino-int8",)
    calibration_size: int = 300
    # INT8 verification on the dev clips: one gloss error is 0.2 WER points on ~450 glosses, so
    # the demo allows 1 point and 90% gloss agreement (edge-slr convert: 0.5 and 95%)
    max_wer_drop: float = 1.0
    min_agreement: float = 0.9
    video: Path | None = None  # a signer video; None: the shared webcam (or AUTSL) clip
    lengths: tuple[int, ...] = (50, 100, 200)  # benchmark sequence lengths (frames)
    beam_width: int = 5
    threads: int = 2
    seed: int = 0
    fresh: bool = False  # delete the work folder's stages and rebuild everything
    progress: bool = True  # tqdm bars
    extra_student: tuple[str, ...] = field(default=())  # more `--set table.key=value` overrides

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_dir", Path(self.work_dir))
        for name in ("shared", "corpus_root", "video"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "lengths", tuple(self.lengths))
        object.__setattr__(self, "extra_student", tuple(self.extra_student))
        # paths first: a missing video or a work folder that is a file must not wait for training
        if self.work_dir.exists() and not self.work_dir.is_dir():
            raise InputError(
                f"work_dir {str(self.work_dir)!r} is an existing file; expected a folder"
            )
        if self.video is not None and not self.video.is_file():
            raise InputError(f"video {str(self.video)!r} does not exist (or is not a file)")
        if self.corpus not in CORPUS_CHOICES:
            raise InputError(f"corpus must be one of {CORPUS_CHOICES}, got {self.corpus!r}")
        if self.corpus_root is not None and self.corpus in ("auto", "builtin"):
            raise InputError(
                f"corpus_root {str(self.corpus_root)!r} needs a corpus name "
                "(--corpus phoenix2014t, phoenix2014 or csl-daily)"
            )
        positive = (
            "glosses", "train_sentences", "eval_sentences", "signers", "width", "epochs",
            "batch_size", "corrector_width", "calibration_size", "beam_width", "threads",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.glosses < 2 or self.train_sentences < 2:
            raise InputError(
                f"glosses and train_sentences must be >= 2, got {self.glosses}, "
                f"{self.train_sentences}"
            )
        if self.corrector_width % 4:
            raise InputError(
                f"corrector_width must be a multiple of 4 (4 heads), got {self.corrector_width}"
            )
        if not 0 < self.corrector_minutes <= 60:
            raise InputError(
                f"corrector_minutes must be in (0, 60], got {self.corrector_minutes!r}"
            )
        if not 0 <= self.max_wer_drop <= 100:
            raise InputError(f"max_wer_drop is in WER points 0..100, got {self.max_wer_drop!r}")
        if not 0 <= self.min_agreement <= 1:
            raise InputError(f"min_agreement must be in [0, 1], got {self.min_agreement!r}")
        if self.difficulty not in ("easy", "default", "hard"):
            raise InputError(f"difficulty must be easy, default or hard, got {self.difficulty!r}")
        if not self.lengths or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.lengths
        ):
            raise InputError(f"lengths must be positive frame counts, got {self.lengths!r}")
        self._check_targets()

    def _check_targets(self) -> None:
        from edge_slr.converters import TARGETS

        if not self.targets:
            raise InputError("targets must name at least one conversion target")
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown:
            raise InputError(
                f"unknown conversion target(s) {unknown}; expected some of {list(TARGETS)}"
            )
        if len(set(self.targets)) != len(self.targets):
            raise InputError(f"targets repeat a name: {list(self.targets)}")

    def shared_dir(self) -> tuple[Path | None, str]:
        """The real-data folder to use (or None) and a sentence saying why."""
        from edge_slr.paths import shared_data_dir

        if not self.use_shared:
            return None, "shared data switched off (--no-shared)"
        if self.shared is not None:
            if self.shared.is_dir():
                return self.shared, f"shared data: {self.shared}"
            return None, f"{self.shared} does not exist: running as on a bare machine"
        found = shared_data_dir()
        if found is None:
            return (
                None,
                "no ../shared/data (nor EDGE_SLR_SHARED_DATA): running as on a bare machine",
            )
        return found, f"shared data: {found}"

    def sentence_source(self) -> tuple[str | None, Path | None, str]:
        """(corpus or None for the built-in grammar, its folder, a sentence saying why)."""
        if self.corpus == "builtin":
            return None, None, "built-in weather-forecast grammar (--corpus builtin)"
        if self.corpus_root is not None:
            if not self.corpus_root.is_dir():
                raise InputError(f"corpus_root {str(self.corpus_root)!r} is not a folder")
            return self.corpus, self.corpus_root, f"{self.corpus} sentences from {self.corpus_root}"
        shared, why = self.shared_dir()
        name = "phoenix2014t" if self.corpus == "auto" else self.corpus
        folder = None if shared is None else shared / _SHARED_FOLDERS[name]
        if folder is not None and folder.is_dir():
            return name, folder, f"real {name} sentences and splits from {folder}"
        if self.corpus != "auto":
            raise InputError(
                f"corpus {name!r} was asked for but {folder or '../shared/data'} is absent; "
                "pass --corpus-root DIR"
            )
        return None, None, f"built-in weather-forecast grammar ({why})"

    def video_path(self) -> tuple[Path | None, str]:
        """The real signer video to recognise (or None) and a sentence saying why."""
        if self.video is not None:
            if not self.video.is_file():
                raise InputError(f"video {str(self.video)!r} does not exist")
            return self.video, f"video: {self.video}"
        shared, why = self.shared_dir()
        if shared is None:
            return None, (
                f"video step skipped: {why}, and edge-slr bundles no signer video "
                "(give one with --video FILE)"
            )
        for relative in VIDEO_CANDIDATES:
            if (shared / relative).is_file():
                return shared / relative, f"video: {shared / relative}"
        return None, (
            f"video step skipped: none of {list(VIDEO_CANDIDATES)} is in {shared} "
            "(give one with --video FILE)"
        )


_SHARED_FOLDERS = {
    "phoenix2014t": "phoenix2014t",
    "phoenix2014": "phoenix2014",
    "csl-daily": "csl-daily",
}
