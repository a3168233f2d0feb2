"""torch.nn.parallel.DataParallel on one device: the wrapped module runs whole on the
first of ``device_ids`` (clgraph does not replicate a module across devices in one
process; for several devices use DistributedDataParallel, one process each). The results
are PyTorch's, only without the split of the batch. Imports nn.Module and the tensor and
device layers."""

from __future__ import annotations

import warnings

from ...device import as_device, default_device
from ...tensor import Tensor
from ..module import Module


def _move(obj, device):
    """Tensors inside tuples, lists and dicts moved to ``device`` (others unchanged)."""
    if isinstance(obj, Tensor):
        return obj if obj.device == device else obj.to(device)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_move(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


class DataParallel(Module):
    """torch.nn.DataParallel(module, device_ids=None, output_device=None, dim=0): ``forward``
    moves the inputs to ``device_ids[0]`` (default: where the module's parameters are),
    calls the module and moves the output to ``output_device``. ``module`` is the wrapped
    module, so state dict keys start with ``module.`` as in PyTorch."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.dim = dim
        if device_ids is None:
            first = next(iter(module.parameters()), None)
            device_ids = [first.device if first is not None else default_device()]
        self.device_ids = [as_device(d) for d in device_ids]
        if not self.device_ids:
            raise ValueError("DataParallel needs at least one device in device_ids")
        if len(set(self.device_ids)) > 1:
            warnings.warn(f"DataParallel runs the whole module on {self.device_ids[0]}: "
                          "clgraph does not replicate a module across devices in one process "
                          "(use DistributedDataParallel, one process per device)", stacklevel=2)
        self.output_device = as_device(output_device if output_device is not None
                                       else self.device_ids[0])
        self.src_device_obj = self.device_ids[0]
        for t in list(module.parameters()) + list(module.buffers()):
            if t.device != self.src_device_obj:
                raise RuntimeError(f"module must have its parameters and buffers on device "
                                   f"{self.src_device_obj} (device_ids[0]) but found one of "
                                   f"them on device: {t.device}")

    def forward(self, *inputs, **kwargs):
        inputs = _move(inputs, self.src_device_obj)
        kwargs = _move(kwargs, self.src_device_obj)
        return _move(self.module(*inputs, **kwargs), self.output_device)
