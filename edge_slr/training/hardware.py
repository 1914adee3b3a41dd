"""Where and how training steps run: device, mixed precision, DataLoader, torch DDP.

    device      ``auto`` (the process's CUDA device when torch sees one, else the CPU), ``cpu``,
                ``cuda`` or ``cuda:N``; under torchrun ``cuda`` means ``cuda:LOCAL_RANK``
    amp         ``none``; ``bf16`` (autocast, CPU or CUDA; no scaler needed: bf16 has fp32's
                range); ``fp16`` (CUDA only, autocast with a GradScaler). Only the forward pass
                is autocast: every loss (CTC, KD) is computed from fp32 logits
    data        a torch DataLoader over the rank's micro-batches: ``num_workers`` processes,
                pinned memory only on CUDA
    DDP         launched by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK in the environment):
                backend nccl on CUDA, gloo on the CPU; every global batch is cut into
                ``world_size * grad_accumulation`` micro-batches (edge_slr.training.data.plan_steps)
                and each micro-batch loss is weighted by its share of the global batch, so N
                processes with batch B compute the gradient of one process with batch N x B in N
                micro-batches of B (``grad_accumulation = N``). Losses and counts are summed over
                ranks (all_reduce); rank 0 alone evaluates, logs and writes files.

Reproducibility. On the CPU a run is bit-reproducible on the same machine and thread count
(torch's seed, numpy generators keyed by (seed, epoch, index); resume gives the same weights).
On CUDA it is reproducible only up to float rounding: cuDNN's LSTM and ``ctc_loss``'s backward
use atomic adds whose order varies from run to run, and torch has no deterministic CTC backward
on CUDA, so ``torch.use_deterministic_algorithms`` is not switched on. Weights trained on
different devices, AMP settings or process counts differ by rounding, not by recipe.

BatchNorm. The student and the teacher have BatchNorm layers; under DDP each process normalises
with its own batch's statistics (torch's SyncBatchNorm works on CUDA only), which is exactly
what gradient accumulation over micro-batches does in one process; the running statistics are
rank 0's (DDP broadcasts buffers from rank 0 at every forward).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_slr.errors import InputError

logger = logging.getLogger(__name__)

AMP_CHOICES = ("none", "bf16", "fp16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(device: str) -> None:
    if not DEVICE_PATTERN.match(device):
        raise InputError(f"train device must be auto, cpu, cuda or cuda:N, got {device!r}")


def check_amp_name(amp: str) -> None:
    if amp not in AMP_CHOICES:
        raise InputError(f"train amp must be one of {AMP_CHOICES}, got {amp!r}")


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun job (a plain run is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> Ranks:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as err:
            raise InputError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({err})") from None
        if world < 1 or not 0 <= rank < world:
            raise InputError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
        return cls(rank, world, local)


def resolve_device(torch: Any, name: str, ranks: Ranks = Ranks()) -> Any:
    """The torch.device for ``name``; InputError when CUDA is asked for and torch has none."""
    check_device_name(name)
    has_cuda = bool(torch.cuda.is_available())
    if name == "auto":
        name = "cuda" if has_cuda else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not has_cuda:
        raise InputError(
            f"train device {name!r}: this torch ({torch.__version__}) sees no CUDA device; "
            "use --device cpu, or install a CUDA build of torch (README: Training on real data)"
        )
    index = int(name.split(":")[1]) if ":" in name else ranks.local_rank
    count = int(torch.cuda.device_count())
    if index >= count:
        raise InputError(f"train device cuda:{index} does not exist ({count} CUDA devices)")
    return torch.device("cuda", index)


@dataclass
class Hardware:
    """The device, AMP and process group one training run uses (see the module notes)."""

    torch: Any
    device: Any
    amp: str = "none"
    ranks: Ranks = field(default_factory=Ranks)
    num_workers: int = 0
    scaler: Any = None
    owns_group: bool = False  # this run started the process group (and ends it)

    @classmethod
    def create(cls, torch: Any, device: str, amp: str, num_workers: int = 0) -> Hardware:
        check_amp_name(amp)
        ranks = Ranks.from_env()
        target = resolve_device(torch, device, ranks)
        if amp == "fp16" and target.type != "cuda":
            raise InputError("train amp 'fp16' needs a CUDA device; on the CPU use amp = 'bf16'")
        if amp == "bf16" and target.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError(f"train amp 'bf16': {torch.cuda.get_device_name(target)} lacks bf16")
        if target.type == "cuda":
            torch.cuda.set_device(target)
        owns = False
        if ranks.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if target.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            owns = True
        scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        hw = cls(torch, target, amp, ranks, num_workers, scaler, owns)
        if ranks.is_main:
            logger.info("device: %s", hw.describe())
        return hw

    def describe(self) -> str:
        where = str(self.device)
        if self.device.type == "cuda":
            where += f" ({self.torch.cuda.get_device_name(self.device)})"
        procs = f", {self.ranks.world_size} processes (DDP)" if self.ranks.distributed else ""
        return f"{where}, amp {self.amp}{procs}"

    # -- the training step -------------------------------------------------------------------
    def wrap(self, model: Any) -> Any:
        """``model`` on the device; under DDP the DistributedDataParallel wrapper to train with."""
        model.to(self.device)
        if not self.ranks.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return self.torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def autocast(self) -> Any:
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = self.torch.bfloat16 if self.amp == "bf16" else self.torch.float16
        return self.torch.autocast(self.device.type, dtype=dtype)

    def sync(self, model: Any, last: bool) -> Any:
        """DDP: gradients are all-reduced only on the last micro-batch of a step."""
        if last or not hasattr(model, "no_sync"):
            return contextlib.nullcontext()
        return model.no_sync()

    def backward(self, loss: Any) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: Any, parameters: Any, grad_clip: float) -> None:
        """Clip (on unscaled gradients) and step; with fp16 the scaler skips inf/NaN steps."""
        params = list(parameters)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        self.torch.nn.utils.clip_grad_norm_(params, grad_clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def loader(self, dataset: Any, batches: Sequence[Sequence[int]], collate: Any) -> Any:
        """Batches of ``dataset`` in the given order (workers, pinned memory on CUDA)."""
        data = self.torch.utils.data
        return data.DataLoader(
            dataset,
            batch_sampler=[list(b) for b in batches],
            collate_fn=collate,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def to_device(self, batch: Any) -> Any:
        return batch.to(self.device, non_blocking=self.device.type == "cuda")

    # -- across processes --------------------------------------------------------------------
    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Each value summed over all ranks (unchanged in a single process)."""
        if not self.ranks.distributed or not values:
            return values
        keys = sorted(values)
        tensor = self.torch.tensor([float(values[k]) for k in keys], dtype=self.torch.float64)
        tensor = tensor.to(self.device)
        self.torch.distributed.all_reduce(tensor)
        return dict(zip(keys, tensor.cpu().tolist(), strict=True))

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (a collective: all ranks must call it)."""
        return bool(self.sum({"flag": float(flag)})["flag"] > 0)

    def barrier(self) -> None:
        if self.ranks.distributed:
            if self.device.type == "cuda":
                self.torch.distributed.barrier(device_ids=[self.device.index])
            else:
                self.torch.distributed.barrier()

    def close(self) -> None:
        if self.owns_group and self.torch.distributed.is_initialized():
            self.torch.distributed.destroy_process_group()
            self.owns_group = False

    # -- state for resume --------------------------------------------------------------------
    def rng_state(self) -> dict[str, Any]:
        state = {"torch_rng": self.torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda_rng"] = self.torch.cuda.get_rng_state(self.device)
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def restore(self, training: dict[str, Any]) -> None:
        """RNG (and scaler) state of a checkpoint; a CUDA RNG state is ignored on the CPU."""
        self.torch.set_rng_state(training["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in training:
            self.torch.cuda.set_rng_state(training["cuda_rng"], self.device)
        if self.scaler is not None and "scaler" in training:
            self.scaler.load_state_dict(training["scaler"])


class OnDevice:
    """A model called with CPU batches: inputs moved to its device, outputs back to the CPU in
    fp32 (what the evaluation code, written for CPU tensors, expects)."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model, self.device = model, device

    def eval(self) -> OnDevice:
        self.model.eval()
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        moved = [a.to(self.device) if hasattr(a, "to") else a for a in args]
        out = self.model(*moved, **kwargs)
        return type(out)(*(_cpu(value) for value in out))

    def __getattr__(self, name: str) -> Any:  # dims, num_parameters, ...
        return getattr(self.model, name)


def _cpu(value: Any) -> Any:
    if value is None or not hasattr(value, "cpu"):
        return value
    value = value.cpu()
    return value.float() if value.is_floating_point() else value


def fp32_outputs(out: Any) -> Any:
    """A model output (NamedTuple of tensors) with floating tensors in fp32: losses after AMP."""
    return type(out)(*(v.float() if v is not None and v.is_floating_point() else v for v in out))


def iterate_steps(
    hw: Hardware, dataset: Any, steps: Sequence[Sequence[tuple[list[int], float]]], collate: Any
) -> Iterator[list[tuple[Any, float]]]:
    """For each optimizer step, its micro-batches (on the device) with their loss weights."""
    flat = [indices for step in steps for indices, _ in step]
    batches = iter(hw.loader(dataset, flat, collate))
    for step in steps:
        yield [(hw.to_device(next(batches)), weight) for _, weight in step]
