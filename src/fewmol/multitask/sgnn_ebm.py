"""SGNN-EBM: the energy over joint task labels, its NCE training loss, and Gibbs sampling.

For molecule x and binary labels y in {0, 1}^T over a task graph G with M undirected edges,

    E(x, y) = − Σ_i f_i(x, y_i) − λ Σ_{(i,j) ∈ G} f_ij(x, y_i, y_j)

with the log-potential tables f from :class:`~fewmol.multitask.sgnn.StructuredHead`
(``node_pot`` (B, T, 2), ``edge_pot`` (B, M, 2, 2)). Missing labels (NaN) are left out of the
sums: an edge term counts only when both its labels are observed.

**NCE.** The model p̃(y | x) = exp(−E) is trained to tell observed label vectors from K samples
of a noise distribution q(y | x) = Π_i Bernoulli(π_i), with the logit
s(y) = −E(x, y) − log q(y | x) − log K (Gutmann & Hyvärinen 2010):

    loss = − E_data[ log σ(s(y)) ] − Σ_k E_{y ~ q}[ log σ(−s(y)) ]

which is REFERENCE C's E_{p_n} log σ(E) + E_{p_data} log σ(−E) with the noise log-ratio made
explicit (for uniform noise, log q is a constant and the two agree up to a shift). π is fixed
(per-task training label frequencies) or adaptive (the jointly trained SGNN's sigmoid,
detached); either is mixed with a little uniform noise so q never rules a label out.

**Tilted model** (``tilted=True``; the released code's ``--use_ebm_as_tilting``). The joint is
the noise tilted by the energy, p(y | x) ∝ q(y | x) exp(−E(x, y)), so the NCE logit is
s(y) = −E(x, y) − log K (the noise term cancels) and the Gibbs conditionals add each task's noise
logit log(π_i / (1 − π_i)) to its field: with the adaptive noise, predictions combine the jointly
trained SGNN's with the energy's. The potentials stay normalised log tables, so exp(−E) ≤ 1 and
s < −log K: the data term of the loss never saturates and pulls every table towards the observed
labels much as a likelihood would, so the energy learns more than the correction
log p_data − log q, and the SGNN's view enters twice at inference. The released code did the
same in effect (NCE against the noise, then conditionals multiplied by σ(prior logit) without
renormalising); this is its normalised form, an option to measure, not the paper's default.

**Gibbs noise** (``noise="gibbs"`` in the module; the released code's ``--NCE_mode=gs``). The
noise is the energy's own view: the marginals of a few Gibbs sweeps of the current (detached)
energy, the chains started from the jointly trained SGNN's probabilities and tilted by its
logits, as the released code's sampler with ``--use_ebm_as_tilting``. The NCE then contrasts the
data with what the model (steered by the SGNN) already believes; predictions use the same tilted
chain with more sweeps.

**Filling missing labels** (``fill_missing``; the released code's ``--filling_missing_data_mode``).
A missing label of the data vector takes the value of the noise sample it is compared with, and
every task counts in both energies: the edges between an observed and a missing task then enter
the NCE, while the two vectors differ only where labels are observed. With K noise samples the
data vector is filled once per sample and its term averaged over the K.

**Inference.** Gibbs sampling from p(y_i | y_−i, x) ∝ exp(f_i(y_i) + λ Σ_{j~i} f_ij(y_i, y_j)).
Tasks are greedily coloured so that no two neighbours share a colour; all tasks of one colour
are conditionally independent given the rest and are resampled together (chromatic Gibbs: the
same chain as one-at-a-time sweeps, in a few batched steps). The marginal P(y_i = 1 | x) is the
average of the conditional probabilities over the sweeps after burn-in (Rao-Blackwellised),
over ``chains`` parallel chains. Labels given as evidence are clamped.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

# Noise probabilities are kept inside [eps, 1 - eps] after mixing with uniform.
_PROB_EPS = 1e-4

#: the NCE noise: label frequencies or a frozen model (fixed), the jointly trained SGNN
#: (adaptive), or a few Gibbs sweeps of the energy steered by that SGNN (gibbs)
NOISES = ("fixed", "adaptive", "gibbs")


# --------------------------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------------------------


def log_potential(
    node_pot: torch.Tensor,
    edge_pot: torch.Tensor,
    pairs: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """−E(x, y) over observed labels: Σ_i m_i f_i(y_i) + λ Σ_(i,j) m_i m_j f_ij(y_i, y_j).

    Shapes: node_pot (B, T, 2), edge_pot (B, M, 2, 2), pairs (2, M), y (..., B, T) integer 0/1,
    mask (B, T) bool (broadcast over y's leading dims) -> (..., B).
    """
    lead = y.shape[:-2]
    yl = y.long()
    node = node_pot.expand(*lead, *node_pot.shape).gather(-1, yl.unsqueeze(-1)).squeeze(-1)
    m = mask.to(node_pot.dtype)
    total = (node * m).sum(-1)
    if pairs.shape[1] and lam != 0.0:
        src, dst = pairs[0], pairs[1]
        flat = edge_pot.reshape(*edge_pot.shape[:2], 4)
        idx = yl[..., src] * 2 + yl[..., dst]  # (..., B, M)
        edge = flat.expand(*lead, *flat.shape).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        total = total + lam * (edge * (m[:, src] * m[:, dst])).sum(-1)
    return total


def energy(
    node_pot: torch.Tensor,
    edge_pot: torch.Tensor,
    pairs: torch.Tensor,
    y: torch.Tensor,
    lam: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """E(x, y) = −Σ f_i − λ Σ f_ij (all labels observed unless ``mask``); shape (..., B)."""
    if mask is None:
        mask = torch.ones(node_pot.shape[:2], dtype=torch.bool, device=node_pot.device)
    return -log_potential(node_pot, edge_pot, pairs, y, mask, lam)


# --------------------------------------------------------------------------------------------
# Noise distributions and NCE
# --------------------------------------------------------------------------------------------


def mix_uniform(prob: torch.Tensor, mix: float) -> torch.Tensor:
    """(1 − mix)·prob + mix/2, clipped away from 0 and 1 (a noise that never rules a label out)."""
    return ((1.0 - mix) * prob + 0.5 * mix).clamp(_PROB_EPS, 1.0 - _PROB_EPS)


def label_frequencies(y: np.ndarray, prior: float = 1.0) -> np.ndarray:
    """Per-task fraction of positives among observed labels, with ``prior`` pseudo-counts each.

    The fixed noise of SGNN-EBM: it depends on the training labels only, never on x.
    """
    y = np.asarray(y, dtype=np.float64)
    lab = np.isfinite(y)
    pos = np.where(lab, y, 0.0).sum(0)
    return ((pos + prior) / (lab.sum(0) + 2 * prior)).astype(np.float32)


def bernoulli_log_prob(prob: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_i m_i log q(y_i) for independent Bernoulli(prob); y (..., B, T) -> (..., B)."""
    lp = torch.where(y > 0.5, torch.log(prob), torch.log1p(-prob))
    return (lp * mask.to(prob.dtype)).sum(-1)


def nce_loss(
    node_pot: torch.Tensor,
    edge_pot: torch.Tensor,
    pairs: torch.Tensor,
    y: torch.Tensor,
    noise_prob: torch.Tensor,
    lam: float,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    tilted: bool = False,
    fill_missing: bool = False,
) -> torch.Tensor:
    """Binary NCE loss of the EBM against Bernoulli noise.

    y (B, T) float with NaN = missing; noise_prob (B, T) or (T,), treated as a constant.
    ``tilted``: the model is q·exp(−E), so the logit is −E − log K (module docstring).
    Missing labels are left out of both energies, or with ``fill_missing`` take the noise
    sample's values (module docstring). Molecules without any observed label are skipped;
    returns a scalar (0 if none left).
    """
    mask = ~torch.isnan(y)
    rows = mask.any(1)
    if not bool(rows.any()):
        return node_pot.sum() * 0.0
    q = noise_prob.detach().expand_as(node_pot[..., 0])
    y_data = torch.where(mask, y, torch.zeros_like(y))
    u = torch.rand((num_samples, *q.shape), generator=generator, device=q.device, dtype=q.dtype)
    y_noise = (u < q).to(q.dtype)  # (K, B, T)
    counted = mask
    if fill_missing:
        y_data = torch.where(mask, y_data, y_noise)  # (K, B, T): one filled copy per sample
        counted = torch.ones_like(mask)
    log_k = math.log(num_samples)
    s_data = log_potential(node_pot, edge_pot, pairs, y_data, counted, lam) - log_k
    s_noise = log_potential(node_pot, edge_pot, pairs, y_noise, counted, lam) - log_k
    if not tilted:
        s_data = s_data - bernoulli_log_prob(q, y_data, counted)
        s_noise = s_noise - bernoulli_log_prob(q, y_noise, counted)
    data_term = F.logsigmoid(s_data)
    if fill_missing:
        data_term = data_term.mean(0)
    per_mol = data_term + F.logsigmoid(-s_noise).sum(0)
    return -per_mol[rows].mean()


# --------------------------------------------------------------------------------------------
# Gibbs sampling
# --------------------------------------------------------------------------------------------


def greedy_coloring(pairs: np.ndarray, num_tasks: int) -> np.ndarray:
    """Colour per task (int64, 0..K-1) such that no edge joins two tasks of one colour.

    Largest degree first, each task taking the smallest colour its coloured neighbours leave
    free (at most max degree + 1 colours). Runs once per model, O(T + M).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(2, -1)
    color = np.full(num_tasks, -1, dtype=np.int64)
    if num_tasks == 0:
        return color
    both = np.concatenate([pairs, pairs[::-1]], axis=1)
    order = np.argsort(both[0], kind="stable")
    src, dst = both[0][order], both[1][order]
    ptr = np.searchsorted(src, np.arange(num_tasks + 1))
    degree = np.diff(ptr)
    for i in np.argsort(-degree, kind="stable"):
        used = set(color[dst[ptr[i] : ptr[i + 1]]].tolist())
        c = 0
        while c in used:
            c += 1
        color[i] = c
    return color


class GibbsSampler:
    """Chromatic Gibbs sampler for the pairwise binary EBM on a fixed task graph.

    Build once per graph (the colouring and per-colour edge lists); :meth:`marginals` then runs
    batched over molecules and chains. A Python loop runs over sweeps and colours only.
    """

    def __init__(self, pairs: torch.Tensor | np.ndarray, num_tasks: int):
        p = np.asarray(torch.as_tensor(pairs).cpu(), dtype=np.int64).reshape(2, -1)
        self.num_tasks = num_tasks
        self.num_edges = p.shape[1]
        self.color = greedy_coloring(p, num_tasks)
        self.num_colors = int(self.color.max()) + 1 if num_tasks else 0
        # For colour k: its tasks, and the edges where one of them is the first / second
        # endpoint, with that endpoint's position among the colour's tasks.
        self._groups: list[tuple[torch.Tensor, ...]] = []
        for k in range(self.num_colors):
            tasks = np.flatnonzero(self.color == k)
            local = np.full(num_tasks, -1, dtype=np.int64)
            local[tasks] = np.arange(tasks.size)
            ea = np.flatnonzero(self.color[p[0]] == k)
            eb = np.flatnonzero(self.color[p[1]] == k)
            self._groups.append(
                tuple(
                    torch.from_numpy(a)
                    for a in (tasks, ea, p[1, ea], local[p[0, ea]], eb, p[0, eb], local[p[1, eb]])
                )
            )

    def marginals(
        self,
        node_pot: torch.Tensor,
        edge_pot: torch.Tensor,
        lam: float,
        sweeps: int = 20,
        chains: int = 1,
        burn_in: int | None = None,
        evidence: torch.Tensor | None = None,
        init: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        tilt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Estimated P(y_i = 1 | x, evidence), (B, T).

        node_pot (B, T, 2), edge_pot (B, M, 2, 2); ``evidence`` (B, T) with 0/1 for clamped
        labels and NaN elsewhere; ``init`` (B, T) P(y_i = 1) to draw the starting state from
        (default: the node potentials alone); ``tilt`` (B, T) noise logits of the tilted model,
        added to every task's field. ``burn_in`` sweeps (default sweeps // 4) are not averaged.
        """
        if sweeps < 1:
            raise ValueError(f"sweeps must be >= 1, got {sweeps}")
        if chains < 1:
            raise ValueError(f"chains must be >= 1, got {chains}")
        burn = sweeps // 4 if burn_in is None else min(max(burn_in, 0), sweeps - 1)
        b, t = node_pot.shape[:2]
        dev, dt = node_pot.device, node_pot.dtype
        with torch.no_grad():
            rep = (lambda a: a.repeat_interleave(chains, 0)) if chains > 1 else (lambda a: a)
            base = node_pot[..., 1] - node_pot[..., 0]
            if tilt is not None:
                base = base + tilt.to(dev, dt)
            base = rep(base)  # (BC, T)
            # Change of f_ij when the first (second) endpoint flips 0 -> 1, per other label.
            d_first = rep(lam * (edge_pot[:, :, 1, :] - edge_pot[:, :, 0, :]))  # (BC, M, 2)
            d_second = rep(lam * (edge_pot[:, :, :, 1] - edge_pot[:, :, :, 0]))
            p0 = torch.sigmoid(base) if init is None else rep(init.to(dev, dt))
            y = (torch.rand(p0.shape, generator=generator, device=dev, dtype=dt) < p0).to(dt)
            clamp = None
            if evidence is not None:
                ev = rep(evidence.to(dev, dt))
                clamp = ~torch.isnan(ev)
                y = torch.where(clamp, ev, y)
            acc = torch.zeros_like(base)
            groups = [tuple(g.to(dev) for g in grp) for grp in self._groups]
            for sweep in range(sweeps):
                for tasks, ea, a_other, a_local, eb, b_other, b_local in groups:
                    field = base[:, tasks].clone()
                    if ea.numel():
                        other = y[:, a_other].long().unsqueeze(-1)
                        field.index_add_(1, a_local, d_first[:, ea].gather(2, other).squeeze(-1))
                    if eb.numel():
                        other = y[:, b_other].long().unsqueeze(-1)
                        field.index_add_(1, b_local, d_second[:, eb].gather(2, other).squeeze(-1))
                    p = torch.sigmoid(field)
                    u = torch.rand(p.shape, generator=generator, device=dev, dtype=dt)
                    new = (u < p).to(dt)
                    if clamp is not None:
                        new = torch.where(clamp[:, tasks], y[:, tasks], new)
                    y[:, tasks] = new
                    if sweep >= burn:
                        acc[:, tasks] += p
            marg = acc / (sweeps - burn)
            if clamp is not None:
                marg = torch.where(clamp, ev, marg)
            return marg.view(b, chains, t).mean(1) if chains > 1 else marg


def gibbs_noise(
    sampler: GibbsSampler,
    node_pot: torch.Tensor,
    edge_pot: torch.Tensor,
    sgnn_prob: torch.Tensor,
    lam: float,
    sweeps: int = 2,
) -> torch.Tensor:
    """P(y_t = 1) of the Gibbs noise (B, T): ``sweeps`` sweeps of the energy (the sampler runs
    without gradients), started from and tilted by the SGNN's probabilities ``sgnn_prob`` (B, T),
    every sweep averaged."""
    return sampler.marginals(
        node_pot.float(),
        edge_pot.float(),
        lam,
        sweeps,
        burn_in=0,
        init=sgnn_prob,
        tilt=torch.logit(sgnn_prob),
    )


def exact_marginals(
    node_pot: torch.Tensor, edge_pot: torch.Tensor, pairs: torch.Tensor, lam: float
) -> torch.Tensor:
    """P(y_i = 1 | x) by enumerating all 2^T label vectors (tests and checks; T <= 16)."""
    t = node_pot.shape[1]
    if t > 16:
        raise ValueError(f"exact enumeration is for T <= 16 tasks, got {t}")
    configs = torch.tensor(
        list(itertools.product((0, 1), repeat=t)), dtype=node_pot.dtype, device=node_pot.device
    )  # (2^T, T)
    ys = configs.unsqueeze(1).expand(-1, node_pot.shape[0], -1)  # (2^T, B, T)
    logp = -energy(node_pot, edge_pot, pairs, ys, lam)  # (2^T, B)
    w = torch.softmax(logp, dim=0)
    return torch.einsum("kb,kt->bt", w, configs)
