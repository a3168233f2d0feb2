"""cg.distributed.nn: torch.distributed.nn's autograd-aware collectives
(``cg.distributed.nn.functional``)."""

from . import functional

__all__ = ["functional"]
