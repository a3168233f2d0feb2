"""torch.nn.parallel on clgraph: DistributedDataParallel (one process per device, over
clgraph.distributed) and DataParallel (one device)."""

from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
