"""torch.utils.hooks: ``RemovableHandle``, the handle nn.Module's ``register_*_hook``
methods and Tensor.register_hook return (defined in autograd, the lowest layer with
hooks)."""

from ..autograd import RemovableHandle

__all__ = ["RemovableHandle"]
