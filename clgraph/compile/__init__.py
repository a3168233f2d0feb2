"""cg.compile: trace a call into a graph, fuse it into OpenCL kernels, replay them.

Tracing. The first call with a new signature (the shapes, dtypes, devices and
requires_grad of the tensor arguments, the values of the others, grad mode, the
train/eval flags and parameter buffers of a compiled module, and, for a function, what its
closure variables and the globals it names hold: numbers by value, modules by their flags
and parameters, tensors by storage, other objects by identity) runs the function once with a
recorder installed: every op applied (forward ops, the VJP ops backward() applies, an
optimizer's fused updates), every kernel launched, every host upload and every index check
becomes a node of a flat graph. Python control flow runs at trace time. The traced call
computes real values, so it returns what eager returns.

Host reads. A host read inside the function (``item()``, ``numpy()``, ``bool(t)``, printing
a tensor) means the function's control flow or results may depend on data: the signature
then runs eagerly from then on, with a one-time warning naming the read. Index range checks
are not such reads: the compiled call repeats them on each call's indices.

Host data. Tensors made inside the function from host values (``cg.tensor(array)``,
``cg.from_numpy(arr)``, ``x[list]``) are classified by the code that made them (hostdata):
literals and immutable values stay constants of the plan; data a replay can read again (an
argument, a global, a closure variable, a module attribute) becomes an input of the plan,
uploaded anew from its current value on every call; any other data (computed in the call,
a local) makes the signature run eagerly, with a warning naming the line. A replay never
uploads stale host data.

Passes (pure functions over the captured graph): elementwise kernels are fused vertically
(a chain, across broadcasts and views, computes in registers), common subexpressions and
dead code are removed, work that depends only on constants made inside the function is
folded, independent elementwise kernels (every parameter update of an optimizer step) are
fused horizontally into one launch, and intermediate buffers are reused by liveness.

Autograd across the boundary. When results of a traced call require grad (a compiled
module's forward in an ordinary training loop; several results, as a VAE's), the backward
from them to the parameters and arguments is traced too (autograd.grad on the traced
graph, one incoming gradient per result): the forward plan then also returns the
intermediate values the backward reads, and the replayed results share one autograd node
whose VJP replays the backward plan. Custom autograd Functions are traced like any op: their
forward's ops and their backward's ops (run by autograd.grad) are recorded.

Replay binds the new argument buffers and fresh result buffers into prepared kernels and
enqueues them; optimizer step counts, learning rates and random streams are recomputed on
the host (no Python op code runs). State written in place (parameters, moments, buffers,
``.grad``) is written exactly as eager writes it.

Modules, each importing only those above it:
    hostdata  where host data uploaded in a call comes from: constant, plan input, or eager
    trace     the capture pushed while a call is traced; signatures of arguments
    passes    pure passes over the traced steps (CSE, dead code, constants, fusion)
    replay    Plan, and running it on new arguments
    plan      building a Plan from a capture: results, buffers, lowering, hoisted checks
    backward  a compiled backward for a result that requires grad
    api       compile() and Compiled: the signature cache and introspection
Nothing below clgraph's top level imports this package: lower layers reach it only
through the interpreter a trace pushes on the dispatch stack (registry.push), which
processes every op applied and observes every event reported (runtime.notify).
"""

from .api import compile

__all__ = ["compile"]
