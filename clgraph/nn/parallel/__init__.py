"""torch.nn.parallel on clgraph: DistributedDataParallel (one process per device, over
clgraph.distributed)."""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
