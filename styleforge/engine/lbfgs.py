"""L-BFGS for pixels in a box: one objective evaluation per step, bounds outside the curvature pairs.

PyTorch's ``torch.optim.LBFGS`` (``max_iter=1``, no line search) failed on real VGG features: the
pixels were clamped to [0, 1] after each of its steps, so the curvature pair it stored was not the
step taken; its first step is ``lr / Σ|g|`` (about 5·10⁻⁶ per pixel at 256 px: a wasted evaluation)
and the next one, built on that pair, overshot; and without a line search nothing took an overshoot
back, so the divergence guard ended the run at its third iteration with the photo unchanged
(docs/transfer.md has the measurements). Its absolute thresholds (``sᵀy > 1e-10``, gradient and
change tolerances) also made it depend on the loss's scale.

:class:`BoxLBFGS` is the same quasi-Newton method with those faults taken out:

- **Bounds outside the pairs.** A proposal is projected onto the box, and the pair stored is the
  step actually taken, ``s = x_new − x``, with ``y = g_new − g``. Pixels held at a bound by a gradient
  that pushes outward are left out of the direction (the projected-gradient active set).
- **A backtracking (Armijo) line search spread over steps.** Each :meth:`BoxLBFGS.step` evaluates the
  objective once, at the point the previous step proposed. A proposal whose loss is not below
  ``f + c₁·gᵀs`` is rejected: the step length is halved from the last accepted point (and after
  ``max_backtracks`` rejections the history is dropped and a gradient step taken), so an overshoot
  costs an evaluation, never the run. :attr:`BoxLBFGS.rejected` tells the caller that the last
  evaluation was such a proposal, which the divergence guard then ignores.
- **Scale-free.** The first step (and the one after a reset) moves the pixel with the largest
  gradient by ``first_step``; a pair is kept when ``sᵀy > ε·‖s‖·‖y‖``; nothing compares the loss or
  the gradient with an absolute number.

One evaluation per step keeps iteration counts comparable across optimisers, as in
jcjohnson/neural-style, which counts L-BFGS function evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

__all__ = ["BoxLBFGS"]


class BoxLBFGS(torch.optim.Optimizer):
    """Limited-memory BFGS on one tensor within box bounds, one evaluation per :meth:`step`.

    Args:
        params: One tensor (the image).
        lr: Step length of a quasi-Newton direction (1: the full L-BFGS step).
        history_size: Curvature pairs remembered.
        bounds: ``(low, high)`` box; proposals are projected onto it.
        first_step: With no curvature pair yet, a gradient step whose largest component moves by this.
        c1: Armijo's sufficient-decrease constant.
        max_backtracks: Rejections in a row before the history is dropped.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1.0,
        *,
        history_size: int = 100,
        bounds: tuple[float, float] = (0.0, 1.0),
        first_step: float = 0.05,
        c1: float = 1e-4,
        max_backtracks: int = 6,
    ) -> None:
        super().__init__(params, {"lr": lr})
        tensors = [p for group in self.param_groups for p in group["params"]]
        if len(tensors) != 1:
            raise ValueError("BoxLBFGS optimises exactly one tensor")
        self.x = tensors[0]
        self.history_size, self.bounds, self.first_step = history_size, bounds, first_step
        self.c1, self.max_backtracks = c1, max_backtracks
        self.s: list[Tensor] = []
        self.y: list[Tensor] = []
        self.rho: list[Tensor] = []
        self.base: Tensor | None = None  # the last accepted point, its loss and gradient
        self.base_loss = math.inf
        self.base_grad: Tensor | None = None
        self.direction: Tensor | None = None
        self.t = 0.0
        self.backtracks = 0
        self.rejected = False
        #: Evaluations and rejected proposals so far (for benchmarks).
        self.evaluations = 0
        self.rejections = 0

    def _outward(self, x: Tensor, direction: Tensor) -> Tensor:
        """Where moving ``x`` along ``direction`` would leave the box (pixels held at a bound)."""
        low, high = self.bounds
        return ((x <= low) & (direction < 0)) | ((x >= high) & (direction > 0))

    def _direction(self, g: Tensor) -> Tensor:
        """``−H·g`` by the two-loop recursion over the stored pairs (``H₀ = γI``, γ = sᵀy / yᵀy).

        The recursion's coefficients stay 0-d tensors on the image's device, used through
        ``addcmul_`` (a tensor passed as ``alpha=`` would be copied to the host: on a GPU, two device
        synchronisations per stored pair and step)."""
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            alpha = rho * torch.dot(s, q)
            q.addcmul_(y, alpha, value=-1)
            alphas.append(alpha)
        gamma = torch.dot(self.s[-1], self.y[-1]) / torch.dot(self.y[-1], self.y[-1])
        q.mul_(gamma)
        for s, y, rho, alpha in zip(self.s, self.y, self.rho, reversed(alphas)):
            beta = rho * torch.dot(y, q)
            q.addcmul_(s, alpha - beta)
        return q.neg_()

    def _propose(self) -> None:
        """Sets the image to the projection of ``base + t·direction``."""
        assert self.base is not None and self.direction is not None
        with torch.no_grad():
            self.x.copy_((self.base + self.t * self.direction).view_as(self.x).clamp(*self.bounds))

    def _new_direction(self, lr: float) -> None:
        """The next direction from the accepted point: L-BFGS's on the free pixels, or (with no pair
        yet, or when that is not a descent direction) the free pixels' steepest descent."""
        assert self.base is not None and self.base_grad is not None
        steepest = -self.base_grad
        held = self._outward(self.base, steepest)  # at a bound, and the gradient pushes outward
        steepest.masked_fill_(held, 0.0)
        if self.s:
            direction = self._direction(-steepest)
            # held pixels stay where they are, whatever the curvature model says
            direction.masked_fill_(held | self._outward(self.base, direction), 0.0)
            if float(torch.dot(direction, steepest)) > 0:
                self.direction, self.t = direction, lr
                return
            self._reset()
        self.direction = steepest
        self.t = self.first_step / float(steepest.abs().max().clamp_min(1e-30))

    def _reset(self) -> None:
        self.s.clear()
        self.y.clear()
        self.rho.clear()
        self.backtracks = 0

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """Evaluates ``closure`` (which must compute the loss and its gradient) at the current image,
        accepts or rejects it, and moves the image to the next proposal."""
        lr = self.param_groups[0]["lr"]
        with torch.enable_grad():
            loss = closure()
        self.evaluations += 1
        grad = (
            self.x.grad.detach().flatten().clone()
            if self.x.grad is not None
            else torch.zeros_like(self.x).flatten()
        )
        x = self.x.detach().flatten().clone()
        if self.base is None:
            value = float(loss.detach())
            accept = math.isfinite(value)
        else:  # the loss and the Armijo bound's decrease in one copy to the host
            decrease = torch.dot(self.base_grad, x - self.base)  # type: ignore[arg-type]
            value, drop = torch.stack([loss.detach().reshape(()).to(decrease), decrease]).tolist()
            accept = math.isfinite(value) and value <= self.base_loss + self.c1 * drop
        self.rejected = not accept and self.base is not None
        if accept:
            if self.base is not None:
                s, y = x - self.base, grad - self.base_grad  # type: ignore[operator]
                sy = torch.dot(s, y)
                curvature, norms = torch.stack([sy, s.norm() * y.norm()]).tolist()
                if curvature > 1e-8 * norms:
                    if len(self.s) == self.history_size:
                        del self.s[0], self.y[0], self.rho[0]
                    self.s.append(s)
                    self.y.append(y)
                    self.rho.append(1.0 / sy)
            self.base, self.base_loss, self.base_grad, self.backtracks = x, value, grad, 0
            self._new_direction(lr)
        elif self.base is None:
            return loss  # a non-finite start: nothing to step from
        else:
            self.rejections += 1
            self.backtracks += 1
            if self.backtracks > self.max_backtracks:  # the model of the curvature is wrong: start over
                self._reset()
                self._new_direction(lr)
            else:
                self.t *= 0.5
        self._propose()
        return loss
