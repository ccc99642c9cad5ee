"""Batch-wide loss terms under DDP (torchrun): what a rank needs from the others so that its share of a global batch
contributes exactly its part of the single-process loss.

``pipeline.core.training.fit`` gives every world size the same global batches (rank r takes positions ``r::world``)
and averages the ranks' gradients. A loss that is a mean over the samples of equal per-rank shares is then already
exact; a loss normalised by a batch-wide count, or contrasting each sample with the whole batch, is not. The
helpers here are no-ops without an initialised process group (one process), so single-process numbers never
change.
"""
from __future__ import annotations

import torch


def world_size() -> int:
    """Processes of the initialised ``torch.distributed`` default group (torchrun); 1 without one."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process' rank in the default group; 0 without one."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def sum_over_ranks(counts: torch.Tensor) -> torch.Tensor:
    """``counts`` summed over the ranks of a DDP job (a detached copy; a collective, so every rank must call it
    the same number of times). Batch-wide normalisers summed this way make a rank's share of a global batch
    contribute exactly its part of the single-process loss."""
    out = counts.detach().clone()
    if world_size() > 1:
        torch.distributed.all_reduce(out)
    return out


def global_mean(local_sum: torch.Tensor, local_count: torch.Tensor) -> torch.Tensor:
    """``Σ / count`` over the global batch, as this rank's share: ``local_sum · world / Σ_ranks count`` (count
    clamped at 1), so DDP's average of the ranks' gradients is the single-process gradient. One process:
    ``local_sum / max(local_count, 1)``."""
    return local_sum * world_size() / sum_over_ranks(local_count).clamp(min=1)


def max_over_ranks(value: int) -> int:
    """The largest ``value`` over the ranks (e.g. the padded length a single process would have used)."""
    if world_size() == 1:
        return value
    out = torch.tensor([value], dtype=torch.long)
    torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.MAX)
    return int(out.item())


class _GatherBatch(torch.autograd.Function):
    """All-gather along dim 0 with a gradient: the backward sums every rank's gradient of the gathered tensor and
    returns this rank's rows (all_reduce, so it runs on gloo as well as nccl)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rows, ctx.rank = x.shape[0], rank()
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_global_batch(x: torch.Tensor) -> torch.Tensor:
    """The rows of every rank's ``x`` [b, …] in the single-process batch order (``fit`` deals position ``i·world +
    r`` of a global batch to rank r as its row i; every rank holds ``b`` rows), with gradients flowing back to each
    rank's own rows. Without a process group: ``x`` itself."""
    world = world_size()
    if world == 1:
        return x
    gathered = _GatherBatch.apply(x)  # rank-major: [r0 rows, r1 rows, ...]
    return gathered.reshape(world, x.shape[0], *x.shape[1:]).transpose(0, 1).reshape(-1, *x.shape[1:])


def global_positions(local_rows: int, device: torch.device | None = None) -> torch.Tensor:
    """Positions in the single-process batch of this rank's rows (``i·world + rank``; ``arange`` in one process)."""
    return torch.arange(local_rows, device=device) * world_size() + rank()
