"""nn.AdaptiveLogSoftmaxWithLoss: the adaptive softmax of Grave et al. (a head over the
frequent classes and one cluster token per tail cluster, each cluster a low-rank Sequential of
two bias-free Linears), with PyTorch's construction, parameter names and results."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..creation import tensor, zeros
from ..ops.index import gather
from ..ops.join import cat
from ..tensor import Tensor
from . import functional as F
from .container import ModuleList, Sequential
from .layers import Linear, _factory
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """``forward(input, target)`` returns (output, loss): each target's log-probability and
    the mean negative log-likelihood; ``log_prob(input)`` the full (N, n_classes)
    log-probabilities and ``predict(input)`` their argmax. A cluster's rows are gathered by
    indices read from the target on the host."""

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError(f"cutoffs should be a sequence of unique, positive integers "
                             f"sorted in an increasing order, where each value is between 1 "
                             f"and n_classes-1, got cutoffs={cutoffs} for "
                             f"n_classes={n_classes}")
        fk = _factory(device, dtype)
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **fk)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **fk),
                                        Linear(hsz, osz, bias=False, **fk)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        if target_.dim() == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch "
                                   "dimension.")
            if input_.dim() != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found "
                                   f"inputs with size {input_.shape}")
        elif target_.dim() == 0:
            if input_.dim() != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found "
                                   f"inputs with size {input_.shape}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.dim() > 0
        input = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        t = np.asarray(target.detach().numpy()).astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but "
                               f"values in range [{t.min()}, {t.max()}] were found. ")
        # each row's head column: its class in the shortlist, else its cluster's token
        head_column = t.copy()
        output = zeros(t.shape[0], dtype=input.dtype, device=input.device)
        for i, (low, high) in enumerate(zip(self.cutoffs, self.cutoffs[1:])):
            rows = np.flatnonzero((t >= low) & (t < high))
            if rows.size == 0:
                continue
            head_column[rows] = self.shortlist_size + i
            index = tensor(rows, device=input.device)
            logprob = F.log_softmax(self.tail[i](input.index_select(0, index)), dim=1)
            relative = tensor(t[rows] - low, device=input.device).unsqueeze(1)
            output = output.index_add(0, index, gather(logprob, 1, relative).squeeze(1))
        head_logprob = F.log_softmax(self.head(input), dim=1)
        column = tensor(head_column, device=input.device).unsqueeze(1)
        output = output + gather(head_logprob, 1, column).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob
                         + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, dim=1)

    def log_prob(self, input: Tensor) -> Tensor:
        """The log-probability of every class, (N, n_classes) for input (N, in_features)."""
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        """The most probable class of each row of (N, in_features)."""
        return self.log_prob(input).argmax(dim=1)


__all__ = ["AdaptiveLogSoftmaxWithLoss"]
