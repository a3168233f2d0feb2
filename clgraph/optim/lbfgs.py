"""L-BFGS with an optional strong-Wolfe line search (cubic interpolation), PyTorch's
algorithm. Unlike the other optimizers it reads scalars to the host (the loss, dot
products, norms): its control flow depends on them. The parameters are flattened into one
vector with ops (cat), and every vector operation runs on the device."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from ..autograd import enable_grad, no_grad
from ..creation import zeros_like
from ..ops.registry import functions
from ..tensor import Tensor
from .optimizer import Optimizer, _check, _number


def _dot(a: Tensor, b: Tensor) -> float:
    return a.dot(b).item()


def _abs_max(a: Tensor) -> float:
    return a.abs().max().item()


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2,
    clamped to ``bounds`` (default: between x1 and x2); their midpoint when the cubic has
    no minimum there."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    if x1 == x2:
        return (lo + hi) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    # the formula measured from the farther point
    if x1 <= x2:
        den = g2 - g1 + 2 * d2
        pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / den) if den != 0 else math.nan
    else:
        den = g1 - g2 + 2 * d2
        pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / den) if den != 0 else math.nan
    if math.isnan(pos):
        return (lo + hi) / 2.0
    return min(max(pos, lo), hi)


class _Point(NamedTuple):
    """A point of the line search: step t, loss f, flat gradient g, slope gtd = g . d."""

    t: float
    f: float
    g: Tensor
    gtd: float


class _LineSearch:
    """The evaluations of a strong-Wolfe search along ``d`` from the point ``start``."""

    def __init__(self, evaluate: Callable, d: Tensor, start: _Point, c1: float, c2: float):
        self.evaluate, self.d, self.start = evaluate, d, start
        self.c1, self.c2 = c1, c2
        self.evals = 0

    def at(self, t: float) -> _Point:
        f, g = self.evaluate(t)
        self.evals += 1
        return _Point(t, f, g, _dot(g, self.d))

    def armijo_fails(self, p: _Point) -> bool:
        """Not enough decrease: f(t) > f(0) + c1 t f'(0)."""
        return p.f > self.start.f + self.c1 * p.t * self.start.gtd

    def curvature_holds(self, p: _Point) -> bool:
        """|f'(t)| <= -c2 f'(0)."""
        return abs(p.gtd) <= -self.c2 * self.start.gtd


def _bracket(ls: _LineSearch, t: float, max_ls: int) -> tuple[list, bool, int]:
    """Grow the step until an interval holds a point satisfying the strong Wolfe
    conditions: (that interval as two points, or the satisfying point alone; whether a
    point satisfies them; the iterations used)."""
    prev, new = ls.start, ls.at(t)
    ls_iter = 0
    while ls_iter < max_ls:
        if ls.armijo_fails(new) or (ls_iter > 1 and new.f >= prev.f):
            return [prev, new], False, ls_iter
        if ls.curvature_holds(new):
            return [new], True, ls_iter
        if new.gtd >= 0:
            return [prev, new], False, ls_iter
        # extrapolate, at least 1% beyond the current step and at most ten times it
        bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10)
        t = _cubic_interpolate(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd, bounds)
        prev, new = new, ls.at(t)
        ls_iter += 1
    return [ls.start, new], False, ls_iter


def _zoom(ls: _LineSearch, bracket: list, done: bool, ls_iter: int, max_ls: int,
          tolerance_change: float) -> _Point:
    """Shrink the bracket by cubic interpolation until its low point satisfies the strong
    Wolfe conditions (or it is too small, or the evaluations run out); its low point."""
    d_norm = _abs_max(ls.d)
    insufficient = False
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    while not done and ls_iter < max_ls:
        a, b = bracket
        if abs(b.t - a.t) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        lo, hi = min(a.t, b.t), max(a.t, b.t)
        eps = 0.1 * (hi - lo)
        # a trial too close to an end, twice in a row or outside: 10% inside instead
        if min(hi - t, t - lo) < eps:
            if insufficient or t >= hi or t <= lo:
                t = hi - eps if abs(t - hi) < abs(t - lo) else lo + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        new = ls.at(t)
        ls_iter += 1
        if ls.armijo_fails(new) or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
            continue
        if ls.curvature_holds(new):
            done = True
        elif new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
    return bracket[low]


def _strong_wolfe(evaluate: Callable, t: float, d: Tensor, f: float, g: Tensor, gtd: float,
                  c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                  max_ls: int = 25) -> tuple[float, Tensor, float, int]:
    """A step along ``d`` satisfying the strong Wolfe conditions, from loss ``f``, gradient
    ``g`` and slope ``gtd`` at step 0 and the trial step ``t``; ``evaluate(t)`` gives
    (loss, flat gradient) there. Returns (loss, gradient, step, evaluations)."""
    ls = _LineSearch(evaluate, d, _Point(0.0, f, g, gtd), c1, c2)
    bracket, done, ls_iter = _bracket(ls, t, max_ls)
    best = _zoom(ls, bracket, done, ls_iter, max_ls, tolerance_change)
    return best.f, best.g, best.t, ls.evals


class LBFGS(Optimizer):
    """torch.optim.LBFGS: one param group; ``step(closure)`` runs up to ``max_iter``
    iterations (``max_eval`` closure calls). Its state (on the first parameter, as
    PyTorch's) keeps the step ``"t"``, ``"H_diag"``, ``"prev_loss"`` and the ``"ro"`` and
    ``"al"`` lists as Python floats."""

    _host_state = ("t", "H_diag", "prev_loss", "ro", "al")

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        lr = _number(lr)
        _check(lr >= 0.0, "learning rate", lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def __setstate__(self, state):
        super().__setstate__(state)
        self._params = self.param_groups[0]["params"]

    def _gather_flat_grad(self) -> Tensor:
        """Every parameter's gradient (zeros where None) in one new vector."""
        views = [zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1)
                 for p in self._params]
        return functions.cat(views, 0)

    def _add_grad(self, step_size: float, update: Tensor) -> None:
        """p += step_size * (p's slice of the flat ``update``), for every parameter."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(update[offset:offset + n].view_as(p), alpha=step_size)
            offset += n

    def _directional_evaluate(self, closure, x: list, t: float, d: Tensor):
        """(loss, flat gradient) at x + t d; the parameters are then set back to x."""
        self._add_grad(t, d)
        with enable_grad():
            loss = float(closure())
        flat_grad = self._gather_flat_grad()
        for p, x0 in zip(self._params, x):
            p.copy_(x0)
        return loss, flat_grad

    def _direction(self, state: dict, flat_grad: Tensor, history_size: int) -> Tensor:
        """Update the curvature pairs with the last step, then the L-BFGS direction
        -H g by the two-loop recursion (H: the inverse Hessian estimate)."""
        y = flat_grad - state["prev_flat_grad"]
        s = state["d"] * state["t"]
        ys = _dot(y, s)
        if ys > 1e-10:  # keep only pairs of positive curvature
            if len(state["old_dirs"]) == history_size:
                for k in ("old_dirs", "old_stps", "ro"):
                    state[k].pop(0)
            state["old_dirs"].append(y)
            state["old_stps"].append(s)
            state["ro"].append(1.0 / ys)
            state["H_diag"] = ys / _dot(y, y)
        old_dirs, old_stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        al = state.setdefault("al", [None] * history_size)
        q = -flat_grad
        for i in range(len(old_dirs) - 1, -1, -1):
            al[i] = _dot(old_stps[i], q) * ro[i]
            q.add_(old_dirs[i], alpha=-al[i])
        r = q * state["H_diag"]
        for i in range(len(old_dirs)):
            be_i = _dot(old_dirs[i], r) * ro[i]
            r.add_(old_stps[i], alpha=al[i] - be_i)
        return r

    @no_grad()
    def step(self, closure):
        """Run L-BFGS iterations; ``closure`` re-evaluates the model and returns the loss.
        Returns the loss of the first evaluation."""
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if _abs_max(flat_grad) <= group["tolerance_grad"]:
            return orig_loss
        self._iterate(closure, group, state, loss, flat_grad)
        return orig_loss

    def _iterate(self, closure, group: dict, state: dict, loss: float, flat_grad: Tensor):
        """The iterations of one step() after its first evaluation."""
        lr, max_iter, max_eval = _number(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_change = group["tolerance_change"]
        current_evals, n_iter = 1, 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
                # the first step is at most lr in the gradient's 1-norm
                t = min(1.0, 1.0 / flat_grad.abs().sum().item()) * lr
            else:
                d = self._direction(state, flat_grad, group["history_size"])
                t = lr
            state["prev_flat_grad"] = flat_grad.clone()
            state["prev_loss"] = prev_loss = loss
            gtd = _dot(flat_grad, d)
            if gtd > -tolerance_change:  # not a descent direction any more
                state.update(d=d, t=t)
                break
            loss, flat_grad, t, evals = self._move(closure, group, d, t, loss, flat_grad, gtd,
                                                   n_iter, max_eval - current_evals)
            state.update(d=d, t=t)
            current_evals += evals
            state["func_evals"] += evals
            if n_iter == max_iter or current_evals >= max_eval:
                break
            if _abs_max(flat_grad) <= group["tolerance_grad"]:
                break
            if _abs_max(d * t) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

    def _move(self, closure, group, d, t, loss, flat_grad, gtd, n_iter, max_ls):
        """Move the parameters along ``d``, by the line search's step or by ``t``:
        (loss, flat gradient, step, closure evaluations) after the move."""
        fn = group["line_search_fn"]
        if fn is not None:
            if fn != "strong_wolfe":
                raise RuntimeError("only 'strong_wolfe' is supported")
            x = [p.clone() for p in self._params]
            loss, flat_grad, t, evals = _strong_wolfe(
                lambda step: self._directional_evaluate(closure, x, step, d), t, d, loss,
                flat_grad, gtd, max_ls=max_ls)
            self._add_grad(t, d)
            return loss, flat_grad, t, evals
        self._add_grad(t, d)
        if n_iter == group["max_iter"]:  # the last iteration evaluates nothing more
            return loss, flat_grad, t, 0
        with enable_grad():
            loss = float(closure())
        return loss, self._gather_flat_grad(), t, 1
