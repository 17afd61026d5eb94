"""A general batched factor graph and its Gaussian belief propagation engine.

Variables come in groups of equal dimension; factors come in families
(:mod:`gbp_torch.factors`). One iteration computes the messages of every
family with whole-tensor ops (the Python loops run over families, slots and
schedule phases, never over factors or edges). A leading batch dimension B
solves B graphs of the same structure with different values at once.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .factors.base import FactorFamily, VariableGroup
from .linalg import lane_inverse, lane_matmul, lane_matvec, lane_solve_checked, lane_symmetrize, lane_transpose
from .messages import factor_to_variable
from .schedules import ScheduleLike, as_schedule

#: A residual this many times the largest of the first iterations' is divergence.
DIVERGENCE_GROWTH = 1e3


class GBPDivergenceWarning(RuntimeWarning):
    """Emitted when GBP diverges or leaves variables without a proper belief."""


@dataclass
class GBPResult:
    """Output of :meth:`FactorGraph.solve`.

    Attributes:
        means: per variable group, (B, N, d) marginal means ((N, d) if nothing was batched).
        covs: per group, (B, N, d, d) marginal covariances (GBP's estimate; exact on trees).
        iters: iterations run.
        residuals: (T,) max absolute change of any mean in each iteration.
        converged: residual fell below ``tol``.
        diverged: NaN/inf appeared or the residual grew by ``DIVERGENCE_GROWTH``.
        status: human-readable outcome ("converged", "max_iters", "diverged: ...",
            "underdetermined: ...").
    """

    means: tuple[Tensor, ...]
    covs: tuple[Tensor, ...]
    iters: int
    residuals: Tensor
    converged: bool
    diverged: bool
    status: str
    groups: tuple[VariableGroup, ...] = field(repr=False, default=())
    #: factor-to-variable messages (eta, lam) per family and slot, for warm starts (lanes layout, detached)
    messages: tuple = field(repr=False, default=())

    def mean(self, group: VariableGroup) -> Tensor:
        """Marginal means of ``group``."""
        return self.means[group.gid]

    def cov(self, group: VariableGroup) -> Tensor:
        """Marginal covariances of ``group``."""
        return self.covs[group.gid]


class FactorGraph:
    """Variables (in groups) and factors (in families).

    Example::

        g = FactorGraph()
        x = g.add_variables(100, dim=2)
        g.add(PriorFactors(x[0], mean=torch.zeros(1, 2), precision=10.0))
        g.add(DifferenceFactors(x[:-1], x[1:], z=steps, precision=4.0))
        result = g.solve(iters=200, tol=1e-8)
        result.mean(x)  # (100, 2)
    """

    def __init__(self) -> None:
        self.groups: list[VariableGroup] = []
        self.families: list[FactorFamily] = []

    def add_variables(self, num: int, dim: int, init: Tensor | None = None) -> VariableGroup:
        """Add ``num`` variables of dimension ``dim``; ``init`` (N, d) or (B, N, d) is
        the first linearisation point of nonlinear and robust factors (default 0)."""
        group = VariableGroup(num, dim, init, len(self.groups))
        self.groups.append(group)
        return group

    def add(self, family: FactorFamily) -> FactorFamily:
        """Add a factor family whose variables belong to this graph."""
        if not isinstance(family, FactorFamily):
            raise TypeError(f"expected a FactorFamily, got {type(family).__name__}")
        for slot in family.slots:
            gid = slot.group.gid
            if gid >= len(self.groups) or self.groups[gid] is not slot.group:
                raise ValueError("factor refers to variables of another graph")
        self.families.append(family)
        return family

    def solve(
        self,
        iters: int = 100,
        tol: float | None = None,
        damping: float = 0.0,
        schedule: ScheduleLike = "sync",
        init: GBPResult | None = None,
    ) -> GBPResult:
        """Run GBP; see :class:`GBPEngine`."""
        return GBPEngine(self, damping=damping, schedule=schedule, init=init).run(iters, tol)


class GBPEngine:
    """State and iteration of GBP on a :class:`FactorGraph`.

    Args:
        graph: the factor graph (its tensors set dtype and device).
        damping: d in [0, 1): message = (1 - d) new + d old, on eta and lam.
        schedule: "sync", "random", "sweep", "residual" or a Schedule.
        init: a previous result on a graph of the same structure (e.g. the previous
            frame or refinement step): start from its messages and means (detached).
    """

    def __init__(self, graph: FactorGraph, damping: float = 0.0, schedule: ScheduleLike = "sync",
                 init: GBPResult | None = None):
        if not graph.families:
            raise ValueError("the factor graph has no factors")
        if not 0.0 <= damping < 1.0:
            raise ValueError(f"damping must be in [0, 1), got {damping}")
        self.graph, self.damping, self.schedule = graph, damping, as_schedule(schedule)
        self.dtype = functools.reduce(torch.promote_types, [fam.precision.dtype for fam in graph.families])
        self.device = graph.families[0].precision.device
        for fam in graph.families:
            fam.to(self.dtype, self.device)
        inits = [g.init for g in graph.groups if g.init is not None and g.init.dim() == 3]
        sizes = {fam.num_batch() for fam in graph.families} | {int(i.shape[0]) for i in inits}
        self.batch = max(sizes)
        if sizes - {1, self.batch}:
            raise ValueError(f"batch sizes do not broadcast: {sorted(sizes)}")
        self.batched = bool(inits) or any(fam.batched_input for fam in graph.families)
        self._reset()
        if init is not None:
            self._warm_start(init)

    def _warm_start(self, init: GBPResult) -> None:
        """Messages and means from a previous result (shapes must match this graph's)."""
        eta, lam = init.messages if init.messages else ((), ())
        shapes = [[tuple(t.shape) for t in fam] for fam in self.f2v_eta]
        if [[tuple(t.shape) for t in fam] for fam in eta] != shapes:
            raise ValueError("init: the previous result's messages do not match this graph's structure")
        self.f2v_eta = [[t.detach().to(self.dtype) for t in fam] for fam in eta]
        self.f2v_lam = [[t.detach().to(self.dtype) for t in fam] for fam in lam]
        self.means = [m.detach().to(self.dtype).reshape(self.batch, -1, g.dim).transpose(1, 2).contiguous()
                      for m, g in zip(init.means, self.graph.groups)]
        for i, fam in enumerate(self.graph.families):
            if fam.nonlinear:
                self.lin_point[i] = self.factor_means(i)
                self.models[i] = self.lanes_model(fam, self.lin_point[i])
                self.potentials[i] = self._information(self.models[i])
        self.beliefs = self._beliefs()

    # -- state (lanes layout: vectors (B, d, N|F), matrices (B, d, d, N|F)) ------------
    def _reset(self) -> None:
        b, dt, dev = self.batch, self.dtype, self.device
        self.means = []
        for g in self.graph.groups:
            init = g.init if g.init is not None else torch.zeros(g.num, g.dim)
            self.means.append(init.to(dtype=dt, device=dev).expand(b, g.num, g.dim).transpose(1, 2).contiguous())
        self.index = [[s.index.to(dev) for s in fam.slots] for fam in self.graph.families]
        self.f2v_eta = [[torch.zeros(b, d, fam.num_factors, dtype=dt, device=dev) for d in fam.dims]
                        for fam in self.graph.families]
        self.f2v_lam = [[torch.zeros(b, d, d, fam.num_factors, dtype=dt, device=dev) for d in fam.dims]
                        for fam in self.graph.families]
        self.lin_point: list[Tensor] = []
        self.models: list[tuple[Tensor, Tensor, Tensor]] = []  # lanes J (B, m, n, F), c (B, m, F), L (B, m, m, F)
        self.potentials: list[tuple[Tensor, Tensor]] = []  # lanes eta (B, n, F), lam (B, n, n, F)
        for i, fam in enumerate(self.graph.families):
            x0 = self.factor_means(i)
            self.lin_point.append(x0)
            self.models.append(self.lanes_model(fam, x0))
            self.potentials.append(self._information(self.models[i]))
        self.ok = [torch.ones(self.batch, g.num, dtype=torch.bool, device=dev) for g in self.graph.groups]
        self.track_messages = False  # whether _phase measures message changes (set by run)
        self.frozen: list[tuple[Tensor, Tensor]] | None = None  # fixed potentials (adjoint solves)
        self.eta_source: list[Tensor] | None = None  # per group (B, d, N) added to the beliefs' eta
        self.beliefs = self._beliefs()

    def _gather(self, t: Tensor, idx: Tensor) -> Tensor:
        """Columns ``idx`` (S,) of a lanes tensor (B, ..., N) -> (B, ..., S)."""
        flat = t.reshape(-1, t.shape[-1])
        return torch.gather(flat, 1, idx.expand(flat.shape[0], idx.numel())).reshape(*t.shape[:-1], idx.numel())

    def factor_means(self, i: int, sel: Tensor | None = None, values: list[Tensor] | None = None) -> Tensor:
        """(B, n, F or S) current means (or per-group lanes ``values``) of family i's variables."""
        values = self.means if values is None else values
        parts = []
        for idx, slot in zip(self.index[i], self.graph.families[i].slots):
            parts.append(self._gather(values[slot.group.gid], idx if sel is None else idx[sel]))
        return torch.cat(parts, -2)

    def lanes_model(self, fam: FactorFamily, x0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The family's linear model at x0 (B, n, F), in lanes layout."""
        jac, c = fam.linearise(x0.movedim(-1, 1))
        return (jac.movedim(1, -1).contiguous(), c.movedim(1, -1).contiguous(),
                fam.precision.movedim(1, -1).contiguous())

    @staticmethod
    def _information(model: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """eta = J^T L c (B, n, F), lam = J^T L J (B, n, n, F)."""
        jac, c, prec = model
        jt_l = lane_matmul(lane_transpose(jac), prec)
        return lane_matvec(jt_l, c), lane_symmetrize(lane_matmul(jt_l, jac))

    def _relinearise(self, it: int) -> None:
        for i, fam in enumerate(self.graph.families):
            if not fam.nonlinear or self.frozen is not None:
                continue
            x = self.factor_means(i)
            moved = (x - self.lin_point[i]).abs().amax(-2) > fam.relinearise_threshold  # (B, F)
            if fam.relinearise_every is not None and it % fam.relinearise_every == 0:
                moved = torch.ones_like(moved)
            if not moved.any():
                continue
            jac, c, prec = self.lanes_model(fam, x)
            old_jac, old_c, _ = self.models[i]
            b = moved.unsqueeze(1)
            self.models[i] = (torch.where(b.unsqueeze(1), jac, old_jac), torch.where(b, c, old_c), prec)
            self.lin_point[i] = torch.where(b, x, self.lin_point[i])
            self.potentials[i] = self._information(self.models[i])

    def _potential(self, i: int, sel: Tensor | None) -> tuple[Tensor, Tensor]:
        """Factor potentials (B, n, S), (B, n, n, S) with robust weights at the current means."""
        if self.frozen is not None:
            eta, lam = self.frozen[i]
        else:
            eta, lam = self.potentials[i]
            w = self.robust_weights(i)
            if w is not None:
                eta, lam = eta * w.unsqueeze(-2), lam * w.unsqueeze(-2).unsqueeze(-2)
        eta, lam = eta.expand(self.batch, *eta.shape[1:]), lam.expand(self.batch, *lam.shape[1:])
        if sel is not None:
            eta, lam = eta.index_select(-1, sel), lam.index_select(-1, sel)
        return eta, lam

    def robust_weights(self, i: int, model: tuple[Tensor, Tensor, Tensor] | None = None,
                       x: Tensor | None = None) -> Tensor | None:
        """IRLS weights (B, F) of family i at x (B, n, F), default the current means (None without a kernel)."""
        fam = self.graph.families[i]
        if fam.robust is None:
            return None
        jac, c, prec = self.models[i] if model is None else model
        resid = lane_matvec(jac, self.factor_means(i) if x is None else x) - c  # (B, m, F)
        r = (lane_matvec(prec, resid) * resid).sum(-2).clamp_min(0).sqrt()  # (B, F)
        return fam.robust.weight(r)

    def _beliefs(self) -> list[tuple[Tensor, Tensor]]:
        """Per group: belief eta (B, d, N), lam (B, d, d, N) = sum of incoming factor messages."""
        out = []
        for g in self.graph.groups:
            eta = torch.zeros(self.batch, g.dim, g.num, dtype=self.dtype, device=self.device)
            if self.eta_source is not None:
                eta = eta + self.eta_source[g.gid]
            lam = torch.zeros(self.batch, g.dim, g.dim, g.num, dtype=self.dtype, device=self.device)
            for i, fam in enumerate(self.graph.families):
                for k, slot in enumerate(fam.slots):
                    if slot.group is g:
                        eta = eta.index_add(-1, self.index[i][k], self.f2v_eta[i][k])
                        lam = lam.index_add(-1, self.index[i][k], self.f2v_lam[i][k])
            out.append((eta, lam))
        return out

    def _update_means(self) -> Tensor:
        """Refresh means from beliefs (keeping the old mean where a belief is not PD); return the change."""
        change = torch.zeros((), dtype=self.dtype, device=self.device)
        for gid, (eta, lam) in enumerate(self.beliefs):
            mean, ok = lane_solve_checked(lam, eta.unsqueeze(-2))
            mean = torch.where(ok.unsqueeze(1), mean.squeeze(-2), self.means[gid])
            change = torch.maximum(change, (mean - self.means[gid]).abs().max())
            self.means[gid], self.ok[gid] = mean, ok
        return change

    # -- one phase --------------------------------------------------------------------
    def _phase(self, selection: list[Tensor | None], it: int) -> None:
        fams = self.graph.families
        candidates, changes = [], []
        for i, fam in enumerate(fams):
            sel = selection[i]
            if sel is not None and sel.numel() == 0:  # nothing of this family in this phase
                changes.append(torch.zeros(self.batch, 0, dtype=self.dtype, device=self.device))
                candidates.append(None)
                continue
            eta_f, lam_f = self._potential(i, sel)
            in_eta, in_lam, old_eta, old_lam = [], [], [], []
            for k, slot in enumerate(fam.slots):
                idx = self.index[i][k] if sel is None else self.index[i][k][sel]
                o_eta, o_lam = self.f2v_eta[i][k], self.f2v_lam[i][k]
                if sel is not None:
                    o_eta, o_lam = o_eta.index_select(-1, sel), o_lam.index_select(-1, sel)
                b_eta, b_lam = self.beliefs[slot.group.gid]
                in_eta.append(self._gather(b_eta, idx) - o_eta)
                in_lam.append(self._gather(b_lam, idx) - o_lam)
                old_eta.append(o_eta)
                old_lam.append(o_lam)
            m_eta, m_lam = factor_to_variable(eta_f, lam_f, in_eta, in_lam, fam.dims)
            if self.damping:
                d = self.damping
                m_eta = [(1 - d) * n + d * o for n, o in zip(m_eta, old_eta)]
                m_lam = [(1 - d) * n + d * o for n, o in zip(m_lam, old_lam)]
            if self.schedule.needs_changes or self.track_messages:
                sq = sum((n - o).detach().square().sum(-2) for n, o in zip(m_eta, old_eta))
                sq = sq + sum((n - o).detach().square().sum((-3, -2)) for n, o in zip(m_lam, old_lam))
                changes.append(sq.sqrt())  # (B, S) candidate change of each factor's messages
            else:
                changes.append(m_eta[0].new_empty(m_eta[0].shape[0], m_eta[0].shape[-1]))
            if self.track_messages:
                scale = max(n.detach().abs().amax() for n in m_eta + m_lam)
                self.message_change = torch.maximum(self.message_change, changes[-1].amax())
                self.message_scale = torch.maximum(self.message_scale, scale)
            candidates.append((m_eta, m_lam, old_eta, old_lam))
        masks = self.schedule.accept(changes, it)
        for i, candidate in enumerate(candidates):
            if candidate is None:
                continue
            m_eta, m_lam, old_eta, old_lam = candidate
            sel = selection[i]
            for k in range(len(m_eta)):
                new_eta, new_lam = m_eta[k], m_lam[k]
                if masks is not None:
                    keep = masks[i].unsqueeze(1)  # (B, 1, S)
                    new_eta = torch.where(keep, new_eta, old_eta[k])
                    new_lam = torch.where(keep.unsqueeze(1), new_lam, old_lam[k])
                if sel is None:
                    self.f2v_eta[i][k], self.f2v_lam[i][k] = new_eta, new_lam
                else:
                    self.f2v_eta[i][k] = self.f2v_eta[i][k].index_copy(-1, sel, new_eta)
                    self.f2v_lam[i][k] = self.f2v_lam[i][k].index_copy(-1, sel, new_lam)
        self.beliefs = self._beliefs()

    # -- linear solves with the fixed point's precisions (implicit differentiation) -----
    def linear_solve(self, sources: list[Tensor], iters: int, tol: float) -> list[Tensor]:
        """``Lambda^-1 g`` per group by GBP on this graph with the current potentials frozen.

        ``Lambda`` is GBP's precision at the current state (robust weights and
        linearisations included); ``sources`` holds g per group in lanes layout (B, d, N).
        The converged lam-messages are reused (they do not depend on eta), eta-messages
        start from zero. Returns per group (B, d, N); this engine is left unchanged.
        """
        solver = copy.copy(self)
        solver.frozen = [(torch.zeros_like(eta), lam.detach())
                         for eta, lam in (self._potential(i, None) for i in range(len(self.graph.families)))]
        solver.eta_source = sources
        solver.f2v_eta = [[torch.zeros_like(m) for m in msgs] for msgs in self.f2v_eta]
        solver.f2v_lam = [[m.detach() for m in msgs] for msgs in self.f2v_lam]
        solver.means = [torch.zeros_like(m) for m in self.means]
        solver.ok = list(self.ok)
        solver.beliefs = solver._beliefs()
        solver.run(iters, tol)
        return solver.means

    # -- the loop ---------------------------------------------------------------------
    def run(self, iters: int = 100, tol: float | None = None) -> GBPResult:
        """Iterate (continuing from the current messages) for ``iters`` iterations or until converged.

        Converged: in one iteration no mean moved by ``tol`` or more AND no factor's
        candidate messages (computed for every factor, whether or not the schedule
        applied them) changed by ``tol`` relative to the largest message entry. The
        message test keeps partial schedules and damped priors from stopping early;
        it runs only in iterations that follow one whose mean change was below ``tol``.

        Divergence (NaN/inf, or a mean change ``DIVERGENCE_GROWTH`` times the largest
        of the first 5 non-zero ones) stops the run, sets ``diverged`` and warns.
        """
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        residuals: list[float] = []
        status, converged, diverged = "max_iters", False, False
        sizes = [fam.num_factors for fam in self.graph.families]
        for it in range(iters):
            self._relinearise(it)
            self.track_messages = tol is not None and bool(residuals) and residuals[-1] < tol
            self.message_change = torch.zeros((), dtype=self.dtype, device=self.device)
            self.message_scale = torch.full((), torch.finfo(self.dtype).tiny, dtype=self.dtype, device=self.device)
            for selection in self.schedule.phases(sizes, it, self.device):
                self._phase(selection, it)
            res = float(self._update_means().detach())
            residuals.append(res)
            moving = [r for r in residuals if r > 0][:5]
            if not math.isfinite(res) or not all(torch.isfinite(b[1]).all() for b in self.beliefs):
                status, diverged = f"diverged: non-finite values at iteration {it + 1}", True
            elif len(moving) == 5 and res > DIVERGENCE_GROWTH * max(moving):
                status = f"diverged: mean change {res:.3g} grew over {DIVERGENCE_GROWTH:g}x of {max(moving):.3g}"
                diverged = True
            elif (self.track_messages and res < tol and float(self.message_change / self.message_scale) < tol
                  and all(ok.all() for ok in self.ok)):
                status, converged = "converged", True
            if diverged or converged:
                break
        undetermined = sum(int((~ok).sum()) for ok in self.ok)
        if undetermined and not diverged:
            status = f"underdetermined: {undetermined} variable(s) without a positive-definite belief"
        if diverged or undetermined:
            warnings.warn(f"GBP {status}", GBPDivergenceWarning, stacklevel=3)
        return self._result(len(residuals), residuals, converged, diverged, status)

    def _result(self, iters: int, residuals: list[float], converged: bool, diverged: bool, status: str) -> GBPResult:
        means, covs = [], []
        for (_, lam), ok, mean in zip(self.beliefs, self.ok, self.means):
            cov = lane_symmetrize(lane_inverse(lam))
            cov = torch.where(ok.unsqueeze(1).unsqueeze(1), cov, torch.full_like(cov, float("nan")))
            means.append(mean.movedim(-1, 1))  # (B, N, d)
            covs.append(cov.movedim(-1, 1))  # (B, N, d, d)
        if not self.batched:
            means, covs = [m[0] for m in means], [c[0] for c in covs]
        messages = (tuple(tuple(t.detach() for t in fam) for fam in self.f2v_eta),
                    tuple(tuple(t.detach() for t in fam) for fam in self.f2v_lam))
        return GBPResult(tuple(means), tuple(covs), iters, torch.tensor(residuals, dtype=torch.float64),
                         converged, diverged, status, tuple(self.graph.groups), messages)
