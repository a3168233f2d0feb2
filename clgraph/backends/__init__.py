"""torch.backends: the flags PyTorch programs set (cudnn, cuda.matmul, mps). clgraph has no
cuDNN and no Metal backend; its flags are kept so that such programs run, and only
``cuda.matmul.allow_tf32`` changes what clgraph computes (through
set_float32_matmul_precision)."""

from __future__ import annotations

from . import cuda, cudnn, mps  # noqa: F401
