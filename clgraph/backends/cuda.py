"""torch.backends.cuda: ``matmul.allow_tf32`` is set_float32_matmul_precision as in PyTorch
(True: "high", False: "highest"); the reduced-precision-reduction flags and the
scaled-dot-product attention toggles are stored and change nothing (clgraph's attention
has one implementation). "cuda" in clgraph names an OpenCL GPU, which it always
supports."""

from __future__ import annotations

from ..ops.gemm import get_float32_matmul_precision, set_float32_matmul_precision


class _Matmul:
    """torch.backends.cuda.matmul."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        set_float32_matmul_precision("high" if value else "highest")


matmul = _Matmul()

# scaled_dot_product_attention's backend flags (also set by nn.attention.sdpa_kernel)
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True,
        "overrideable": True}


def check_sdp_enabled() -> None:
    """Raise as PyTorch does when every attention backend is turned off."""
    if not any(_sdp.values()):
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found. This "
                           "is likely due to turning off both the math kernel and the fused "
                           "kernels.")


def is_built() -> bool:
    """True: clgraph's "cuda" devices are OpenCL GPUs, supported in every build."""
    return True


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]
