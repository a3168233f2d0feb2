"""torch.utils.hooks: ``RemovableHandle``, the handle nn.Module's ``register_*_hook``
methods return (defined in nn.module, beside the hooks it removes)."""

from ..nn.module import RemovableHandle

__all__ = ["RemovableHandle"]
