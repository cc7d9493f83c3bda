#!/usr/bin/env python3
"""Writes the golden trajectories that `cargo test --test golden` replays.

Every case drives one optimizer (optionally inside Lookahead or Scout) through a fixed
number of steps and records, after each step, the parameters and the optimizer state. The
optimizer is holocron.optim 0.3.0 itself (PyPI package `pylocron`) wherever this crate
computes what holocron's code computes, and one of the reference classes below wherever
the crate deliberately departs from holocron (docs/numerics.md gives each departure and
its reason). Before writing anything the script checks each reference class against
holocron: with its departure switched off it must reproduce holocron's optimizer, and with
the departure on the golden case must differ from holocron by a clear margin.

Usage (torch 2.15 and pylocron 0.3.0 installed):

    python tools/golden/generate.py OUT_DIR [--seed 1000] [--only NAME ...]
        [--keep DIR] [--compare DIR] [--no-checks] [--f32-rounding]

Case number i of `all_cases()` uses the random seed SEED + i (default SEED: 1000). New
cases are appended at the end of the list, so that existing cases keep their seeds.
`--compare DIR` reads the files of the same names in DIR (e.g. tests/golden) and reports
whether their inputs and parameter trajectories are bit-for-bit equal to the new ones.
`--keep DIR` keeps the inputs and parameter trajectories of the files already in DIR (the
committed set: tests/golden) and only adds what is new (the optimizer state, obtained by
replaying their gradients); cases DIR does not have are generated. `--f32-rounding`
measures how far f32 rounding alone moves each f32 case (the basis of the f32 tolerance).
`OUT_DIR/CASES` lists every case written.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from holocron import optim as holo
from holocron.optim import wrapper as holo_wrap
from holocron.optim.ademamix import ademamix as holo_ademamix

# The crate's f32 tolerance (docs/numerics.md). An epsilon probe must move its case by
# CLEAR_MARGIN; a departure must move every case that exercises it by more than
# OUTSIDE_F32 and at least one of them by CLEAR_MARGIN.
F32_TOL = 2e-4
CLEAR_MARGIN = 100 * F32_TOL
OUTSIDE_F32 = 10 * F32_TOL
# The reference classes must agree with holocron to this (f64 runs).
SAME = 1e-12
# A replay of a kept file's gradients on this machine must land on its parameters to this
# (the same measure; rounding differs between machines and CPU instruction sets).
REPLAY_LIMIT = {torch.float32: 1e-5, torch.float64: 1e-12}


# ---------------------------------------------------------------------------------------
# Reference classes: this crate's semantics where it departs from holocron's code.
# State keys are the crate's state names, so that they are written out unchanged.
# ---------------------------------------------------------------------------------------


class VectorMasks:
    """optax's `weight_decay_mask` and `trust_ratio_mask` (optax.lars, optax.lamb) set to
    leave out the rank-1 tensors, as SimCLR, BYOL and BERT train: a left-out tensor skips
    `add_decayed_weights` (its weight decay is 0) and `scale_by_trust_ratio` (its update is
    unscaled). Which tensors are left out is the crate's choice (rank 1); the semantics of a
    left-out tensor are optax's."""

    def __init__(self, weight_decay=False, trust_ratio=False):
        self.weight_decay, self.trust_ratio = weight_decay, trust_ratio

    def decay(self, p, wd):
        return 0.0 if (self.weight_decay and p.dim() == 1) else wd

    def trusts(self, p):
        return not (self.trust_ratio and p.dim() == 1)


class TrustLars(torch.optim.Optimizer):
    """LARS whose trust ratio scales the direction before the momentum buffer sees it:
    gamma = clamp(|p|, lo, hi) / (|g| + wd |p|), 1 when either side is 0, d = gamma (g + wd p).

    `holocron_order=True` switches the departure off: the ratio |p| / (|g| + wd |p|),
    unclipped, multiplies the step after the momentum buffer, as holocron 0.3.0 does."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 scale_clip=None, holocron_order=False, exclude_vectors_from_weight_decay=False,
                 exclude_vectors_from_trust_ratio=False):
        self.clip = (0.0, 10.0) if scale_clip is None else tuple(scale_clip)
        self.holocron_order = holocron_order
        self.masks = VectorMasks(exclude_vectors_from_weight_decay, exclude_vectors_from_trust_ratio)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            mu, damp, nesterov = group["momentum"], group["dampening"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                wd = self.masks.decay(p, group["weight_decay"])
                norm_p = torch.norm(p)
                below = torch.norm(grad) + wd * norm_p
                above = norm_p if self.holocron_order else norm_p.clamp(*self.clip)
                ratio = 1.0 if (above == 0 or below == 0 or not self.masks.trusts(p)) else above / below
                if self.holocron_order:
                    direction, after = grad + wd * p, ratio
                else:
                    direction, after = (grad + wd * p) * ratio, None
                if mu != 0:
                    slot = self.state[p]
                    if "momentum.buffer" in slot:
                        slot["momentum.buffer"].mul_(mu).add_(direction, alpha=1 - damp)
                    else:
                        slot["momentum.buffer"] = direction.clone()
                    buf = slot["momentum.buffer"]
                    direction = direction + mu * buf if nesterov else buf
                if after is not None:
                    direction = direction * after
                p.add_(direction, alpha=-lr)


class CorrectedLamb(torch.optim.Optimizer):
    """LAMB with Adam's bias correction of both moments (the paper from v3 on, timm, optax).
    `bias_correction=False` is holocron 0.3.0's LAMB."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, scale_clip=None,
                 bias_correction=True, exclude_vectors_from_weight_decay=False,
                 exclude_vectors_from_trust_ratio=False):
        self.clip = (0.0, 10.0) if scale_clip is None else tuple(scale_clip)
        self.bias_correction = bias_correction
        self.masks = VectorMasks(exclude_vectors_from_weight_decay, exclude_vectors_from_trust_ratio)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                slot = self.state[p]
                if not slot:
                    slot["time"] = 0
                    slot["moment_1"] = torch.zeros_like(p)
                    slot["moment_2"] = torch.zeros_like(p)
                slot["time"] += 1
                t = slot["time"]
                slot["moment_1"].mul_(beta_1).add_(grad, alpha=1 - beta_1)
                slot["moment_2"].mul_(beta_2).addcmul_(grad, grad, value=1 - beta_2)
                m, v = slot["moment_1"], slot["moment_2"]
                if self.bias_correction:
                    m, v = m / (1 - beta_1**t), v / (1 - beta_2**t)
                update = m / (v.sqrt() + eps)
                decay = self.masks.decay(p, wd)
                if decay != 0:
                    update = update + decay * p
                norm_p = p.pow(2).sum().sqrt()
                norm_u = update.pow(2).sum().sqrt()
                clipped = norm_p.clamp(*self.clip)
                ratio = 1.0 if (clipped == 0 or norm_u == 0 or not self.masks.trusts(p)) else clipped / norm_u
                p.add_(update * ratio, alpha=-lr)


class BeliefAdaBelief(torch.optim.Optimizer):
    """AdaBelief that adds eps to the stored belief s at every step (the paper's
    Algorithm 2 and the authors' code). `eps_in_belief=False` is holocron 0.3.0.
    `eps_in_denominator=False` drops eps from sqrt(s) + eps only (the epsilon probe)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 eps_in_belief=True, eps_in_denominator=True):
        self.eps_in_belief = eps_in_belief
        self.eps_in_denominator = eps_in_denominator
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                slot = self.state[p]
                if not slot:
                    slot["time"] = 0
                    slot["moment_1"] = torch.zeros_like(p)
                    slot["moment_2"] = torch.zeros_like(p)
                    if amsgrad:
                        slot["max_moment_2"] = torch.zeros_like(p)
                slot["time"] += 1
                t = slot["time"]
                bc_1, bc_2 = 1 - beta_1**t, 1 - beta_2**t
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                m, s = slot["moment_1"], slot["moment_2"]
                m.mul_(beta_1).add_(grad, alpha=1 - beta_1)
                residual = grad - m
                s.mul_(beta_2).addcmul_(residual, residual, value=1 - beta_2)
                if self.eps_in_belief:
                    s.add_(eps)
                if amsgrad:
                    torch.maximum(slot["max_moment_2"], s, out=slot["max_moment_2"])
                    s = slot["max_moment_2"]
                denom = s.sqrt() / math.sqrt(bc_2)
                if self.eps_in_denominator:
                    denom = denom.add_(eps)
                p.addcdiv_(m, denom, value=-lr / bc_1)


class OfficialAdan(torch.optim.Optimizer):
    """Adan as its authors' code, timm and burn::optim::Adan compute it: the previous
    gradient is kept (so the first difference is 0), and weight decay is only the proximal
    division p / (1 + lr wd). `holocron_bugs=True` switches both departures off: the
    previous gradient stays 0 forever and wd p is also added to the gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 holocron_bugs=False):
        self.holocron_bugs = holocron_bugs
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2, beta_3 = group["betas"]
            lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.clone()
                slot = self.state[p]
                if not slot:
                    slot["time"] = 0
                    slot["moment_1"] = torch.zeros_like(p)
                    slot["moment_diff"] = torch.zeros_like(p)
                    slot["moment_2"] = torch.zeros_like(p)
                    if amsgrad:
                        slot["max_moment_2"] = torch.zeros_like(p)
                    slot["previous_grad"] = torch.zeros_like(p) if self.holocron_bugs else grad.clone()
                slot["time"] += 1
                t = slot["time"]
                bc_1, bc_2, bc_3 = 1 - beta_1**t, 1 - beta_2**t, 1 - beta_3**t
                if self.holocron_bugs and wd != 0:
                    grad = grad.add(p, alpha=wd)
                diff = grad - slot["previous_grad"]
                slot["moment_1"].mul_(beta_1).add_(grad, alpha=1 - beta_1)
                slot["moment_diff"].mul_(beta_2).add_(diff, alpha=1 - beta_2)
                mixed = grad + beta_2 * diff
                slot["moment_2"].mul_(beta_3).addcmul_(mixed, mixed, value=1 - beta_3)
                n = slot["moment_2"]
                if amsgrad:
                    torch.maximum(slot["max_moment_2"], n, out=slot["max_moment_2"])
                    n = slot["max_moment_2"]
                denom = (n.sqrt() / math.sqrt(bc_3)).add_(eps)
                p.add_((slot["moment_1"] / bc_1 + beta_2 * slot["moment_diff"] / bc_2) / denom, alpha=-lr)
                if wd != 0:
                    p /= 1 + wd * lr
                if not self.holocron_bugs:
                    slot["previous_grad"] = grad


class ProbeTAdam(torch.optim.Optimizer):
    """holocron 0.3.0's TAdam, re-typed so that the epsilon probe can drop eps from the
    denominator sqrt(v_hat) + eps alone (eps inside the weight w_t stays)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, dof=None,
                 eps_in_denominator=True):
        self.eps_in_denominator = eps_in_denominator
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      dof=dof))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                slot = self.state[p]
                if not slot:
                    slot["time"] = 0
                    slot["moment_1"] = torch.zeros_like(p)
                    slot["moment_2"] = torch.zeros_like(p)
                    if amsgrad:
                        slot["max_moment_2"] = torch.zeros_like(p)
                    slot["weight_sum"] = beta_1 / (1 - beta_1) * torch.ones(1, dtype=p.dtype)
                slot["time"] += 1
                t = slot["time"]
                numel = p.numel()
                dof = numel if group["dof"] is None else group["dof"]
                bc_1, bc_2 = 1 - beta_1**t, 1 - beta_2**t
                grad = p.grad
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                m, v, big_w = slot["moment_1"], slot["moment_2"], slot["weight_sum"]
                w = grad.sub(m).pow_(2).div_(v.add(eps)).sum()
                w.add_(dof).pow_(-1).mul_(dof + numel)
                m.mul_(big_w / (big_w + w)).addcdiv_(w * grad, big_w + w)
                big_w.mul_((2 * beta_1 - 1) / beta_1)
                big_w.add_(w)
                v.mul_(beta_2).addcmul_(grad, grad, value=1 - beta_2)
                if amsgrad:
                    torch.maximum(slot["max_moment_2"], v, out=slot["max_moment_2"])
                    v = slot["max_moment_2"]
                denom = v.sqrt() / math.sqrt(bc_2)
                if self.eps_in_denominator:
                    denom = denom.add_(eps)
                p.addcdiv_(m, denom, value=-lr / bc_1)


class ProbeAdamP(torch.optim.Optimizer):
    """holocron 0.3.0's AdamP, re-typed so that the epsilon probe can drop eps from the
    denominator alone (eps inside the projection's p / (|p| + eps) stays)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, delta=0.1,
                 eps_in_denominator=True):
        self.delta = delta
        self.eps_in_denominator = eps_in_denominator
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            lr, eps, wd, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                slot = self.state[p]
                if not slot:
                    slot["time"] = 0
                    slot["moment_1"] = torch.zeros_like(p)
                    slot["moment_2"] = torch.zeros_like(p)
                    if amsgrad:
                        slot["max_moment_2"] = torch.zeros_like(p)
                slot["time"] += 1
                t = slot["time"]
                bc_1, bc_2 = 1 - beta_1**t, 1 - beta_2**t
                grad = p.grad
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                m, v = slot["moment_1"], slot["moment_2"]
                m.mul_(beta_1).add_(grad, alpha=1 - beta_1)
                v.mul_(beta_2).addcmul_(grad, grad, value=1 - beta_2)
                if amsgrad:
                    torch.maximum(slot["max_moment_2"], v, out=slot["max_moment_2"])
                    v = slot["max_moment_2"]
                denom = v.sqrt() / math.sqrt(bc_2)
                if self.eps_in_denominator:
                    denom = denom.add_(eps)
                direction = m / bc_1 / denom
                cosine = F.cosine_similarity(p.view(1, -1), grad.view(1, -1)).max()
                if cosine < self.delta / math.sqrt(p.numel()):
                    unit = p / p.norm().add_(eps)
                    direction -= (unit * direction).sum() * unit
                p.add_(direction, alpha=-lr)


class DefinedScout(holo_wrap.Scout):
    """holocron's Scout with its two NaN cases given a value: an element whose updates never
    deviate from their mean (0/0) counts 0, and a one-step window (no unbiased std) has
    coherence 0. `nan_guard=False` keeps holocron's NaN, which makes the rate NaN, so that
    the sync only resets the fast weights to the slow ones."""

    def __init__(self, base_optimizer, sync_rate=0.5, sync_period=6, nan_guard=True):
        super().__init__(base_optimizer, sync_rate=sync_rate, sync_period=sync_period)
        self.nan_guard = nan_guard

    def step(self, closure=None):
        loss = self.base_optimizer.step(closure)
        self.fast_steps += 1
        fast = [p for group in self.base_optimizer.param_groups for p in group["params"]]
        for k, p in enumerate(fast):
            self.buffer[k] = torch.cat((self.buffer[k], p.data.clone().detach().unsqueeze(0)))
        if self.fast_steps % self.defaults["sync_period"] == 0:
            per_tensor = []
            for rows in self.buffer:
                steps = rows[1:] - rows[:-1]
                if self.nan_guard and steps.shape[0] < 2:
                    per_tensor.append(0.0)
                    continue
                spread = (steps - torch.mean(steps, dim=0)).abs().max(dim=0).values
                std = torch.std(steps, dim=0)
                if self.nan_guard:
                    ratio = torch.where(spread == 0, torch.zeros_like(std), std / spread)
                else:
                    ratio = std / spread
                per_tensor.append(ratio.mean().item())
            coherence = sum(per_tensor) / len(per_tensor)
            self.sync_params(max(1 - coherence, self.defaults["sync_rate"]))
            self.buffer = [p.data.unsqueeze(0) for group in self.param_groups for p in group["params"]]
        return loss


class WarmAdEMAMix(holo.AdEMAMix):
    """holocron's AdEMAMix with the paper's warm-ups (Pagliardini et al. 2024, Algorithm 1),
    which holocron lacks: at step t, alpha(t) = alpha min(t / T_alpha, 1) and
    beta_3(t) = min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + (t/T) ln b1)), b3) for t < T_beta3,
    beta_3 after. Without warm-ups it is holocron's AdEMAMix exactly (the same `ademamix`
    function runs each parameter's step)."""

    def __init__(self, params, alpha_warmup=None, beta_3_warmup=None, **kwargs):
        self.alpha_warmup = alpha_warmup
        self.beta_3_warmup = beta_3_warmup
        super().__init__(params, **kwargs)

    def alpha_at(self, alpha, t):
        if self.alpha_warmup is None or t >= self.alpha_warmup:
            return alpha
        return alpha * t / self.alpha_warmup

    def beta_3_at(self, beta_1, beta_3, t):
        if self.beta_3_warmup is None or t >= self.beta_3_warmup:
            return beta_3
        a = t / self.beta_3_warmup
        ln_1, ln_3 = math.log(beta_1), math.log(beta_3)
        return min(math.exp(ln_1 * ln_3 / ((1 - a) * ln_3 + a * ln_1)), beta_3)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2, beta_3 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_slow"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                holo_ademamix(
                    [p], [p.grad], [state["exp_avg"]], [state["exp_avg_slow"]], [state["exp_avg_sq"]], [t],
                    beta_1, beta_2, self.beta_3_at(beta_1, beta_3, t), self.alpha_at(group["alpha"], t),
                    group["lr"], group["weight_decay"], group["eps"],
                )


# The optimizer each case name runs; SGD is the inner optimizer of some wrapper cases.
GOLDEN_CLASS = {
    "LARS": TrustLars,
    "LAMB": CorrectedLamb,
    "RaLars": holo.RaLars,
    "TAdam": holo.TAdam,
    "AdaBelief": BeliefAdaBelief,
    "AdamP": holo.AdamP,
    "Adan": OfficialAdan,
    "AdEMAMix": WarmAdEMAMix,
    "SGD": torch.optim.SGD,
}
WRAPPER_CLASS = {"Lookahead": holo_wrap.Lookahead, "Scout": DefinedScout}

# holocron's state keys, renamed to the crate's state names. Anything else (RaLars's and
# LAMB's `local_lr`, SGD's empty momentum slot) is not state the crate keeps.
HOLOCRON_STATE_NAMES = {
    "step": "time",
    "exp_avg": "moment_1",
    "exp_avg_sq": "moment_2",
    "max_exp_avg_sq": "max_moment_2",
    "W_t": "weight_sum",
    "exp_avg_slow": "slow_moment",
}
CRATE_STATE_NAMES = {"time", "moment_1", "moment_2", "max_moment_2", "weight_sum", "slow_moment",
                     "moment_diff", "previous_grad", "momentum.buffer"}


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

def all_cases():
    """Every case, in seed order. Append new cases at the end only."""
    cases = []

    def case(name, optimizer, config, lr, steps=40, wrapper=None, wrapper_config=None, **extra):
        cases.append(dict(name=name, optimizer=optimizer, config=config, lr=lr, steps=steps, wrapper=wrapper,
                          wrapper_config=wrapper_config or {}, kind="small", grad_scale=1.0, **extra))

    # The original set (seeds 1000 to 1027).
    case("lars_default", "LARS", {}, 0.1)
    case("lars_momentum", "LARS", {"momentum": 0.9}, 0.02)
    case("lars_momentum_wd_dampening", "LARS", {"momentum": 0.9, "weight_decay": 1e-2, "dampening": 0.1}, 0.02)
    case("lars_nesterov_wd_clip", "LARS",
         {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-3, "scale_clip": [0.5, 1.5]}, 0.02)
    case("lamb_default", "LAMB", {}, 0.01)
    case("lamb_wd", "LAMB", {"weight_decay": 1e-2}, 0.01)
    case("lamb_clip_betas", "LAMB",
         {"betas": [0.8, 0.99], "scale_clip": [0.5, 2.0], "eps": 1e-6, "weight_decay": 1e-3}, 0.02)
    case("lamb_no_bias_correction_wd", "LAMB", {"weight_decay": 1e-2, "bias_correction": False}, 0.01)
    case("ralars_default", "RaLars", {}, 0.01)
    case("ralars_force_adaptive_wd", "RaLars", {"force_adaptive_momentum": True, "weight_decay": 1e-2}, 0.01)
    case("ralars_clip", "RaLars", {"scale_clip": [0.1, 1.5], "betas": [0.9, 0.99]}, 0.02)
    case("tadam_default", "TAdam", {}, 0.01)
    case("tadam_dof_wd", "TAdam", {"dof": 2.0, "weight_decay": 1e-2}, 0.01)
    case("tadam_amsgrad", "TAdam", {"amsgrad": True, "betas": [0.8, 0.95]}, 0.01)
    case("adabelief_default", "AdaBelief", {}, 0.01)
    case("adabelief_amsgrad_wd", "AdaBelief", {"amsgrad": True, "weight_decay": 1e-2}, 0.01)
    case("adamp_default", "AdamP", {}, 0.01)
    case("adamp_delta_wd", "AdamP", {"delta": 0.5, "weight_decay": 1e-2}, 0.01)
    case("adamp_amsgrad", "AdamP", {"amsgrad": True}, 0.01)
    case("adan_default", "Adan", {}, 0.01)
    case("adan_wd", "Adan", {"weight_decay": 2e-2}, 0.01)
    case("adan_amsgrad", "Adan", {"amsgrad": True, "betas": [0.9, 0.9, 0.95]}, 0.01)
    case("ademamix_default", "AdEMAMix", {}, 0.01)
    case("ademamix_alpha_wd", "AdEMAMix", {"alpha": 2.0, "betas": [0.8, 0.99, 0.999], "weight_decay": 1e-2}, 0.01)
    case("lookahead_sgd", "SGD", {}, 0.1, steps=41, wrapper="Lookahead")
    case("lookahead_lamb", "LAMB", {"weight_decay": 1e-2}, 0.01, steps=41, wrapper="Lookahead",
         wrapper_config={"sync_rate": 0.8, "sync_period": 4})
    case("scout_sgd", "SGD", {}, 0.1, steps=41, wrapper="Scout")
    case("scout_adabelief", "AdaBelief", {}, 0.01, steps=41, wrapper="Scout",
         wrapper_config={"sync_rate": 0.3, "sync_period": 3})

    # RaLars crossing into RAdam's rectified branch (rho_t > 4) within its 40 steps.
    case("ralars_rectified_wd_clip", "RaLars",
         {"betas": [0.9, 0.99], "weight_decay": 1e-2, "scale_clip": [0.2, 2.0]}, 0.02, rectified=True)

    # eps = 1e-3 against gradients of about 1e-3: sqrt(v) and eps are of one size.
    for name, optimizer, extra in [
        ("lamb", "LAMB", {}),
        ("ralars", "RaLars", {"force_adaptive_momentum": True}),
        ("tadam", "TAdam", {}),
        ("adabelief", "AdaBelief", {}),
        ("adamp", "AdamP", {}),
        ("adan", "Adan", {}),
        ("ademamix", "AdEMAMix", {}),
    ]:
        case(f"{name}_eps_sensitive", optimizer, dict(extra, eps=1e-3), 0.01, eps_probe=True)
        cases[-1]["grad_scale"] = 1e-3

    # One 300 x 250 tensor (75 000 elements: three ndarray chunks of 32 768, ten GPU cubes
    # of 8 192) and a zero [6] tensor, inputs from the lattice formula, sampled expectations.
    def large(name, optimizer, config, lr, wrapper=None, wrapper_config=None):
        case(name, optimizer, config, lr, steps=8, wrapper=wrapper, wrapper_config=wrapper_config)
        cases[-1]["kind"] = "large"

    large("lars_large", "LARS", {"momentum": 0.9}, 0.02)
    large("lamb_large", "LAMB", {}, 0.01)
    large("ralars_large", "RaLars", {}, 0.01)
    large("tadam_large", "TAdam", {}, 0.01)
    large("adabelief_large", "AdaBelief", {}, 0.01)
    large("adamp_large", "AdamP", {}, 0.01)
    large("adan_large", "Adan", {}, 0.01)
    large("ademamix_large", "AdEMAMix", {}, 0.01)
    large("lookahead_lamb_large", "LAMB", {}, 0.01, wrapper="Lookahead", wrapper_config={"sync_period": 3})
    large("scout_adabelief_large", "AdaBelief", {}, 0.01, wrapper="Scout", wrapper_config={"sync_period": 3})

    # AdEMAMix with the paper's warm-ups ending inside the 40 steps, and with only one.
    case("ademamix_warmup", "AdEMAMix", {"alpha_warmup": 25, "beta_3_warmup": 30}, 0.01)
    case("ademamix_beta_3_warmup_wd", "AdEMAMix",
         {"alpha": 2.0, "betas": [0.8, 0.99, 0.999], "weight_decay": 1e-2, "beta_3_warmup": 12}, 0.01)

    # LARS and LAMB leaving the rank-1 tensors out of weight decay and the trust ratio (the
    # SimCLR and BERT convention), both masks and one of them.
    both = {"exclude_vectors_from_weight_decay": True, "exclude_vectors_from_trust_ratio": True}
    case("lars_vectors_masked", "LARS", dict(both, momentum=0.9, weight_decay=1e-2), 0.02)
    case("lamb_vectors_masked", "LAMB", dict(both, weight_decay=1e-2), 0.01)
    case("lamb_vectors_out_of_decay", "LAMB", {"weight_decay": 1e-1, "exclude_vectors_from_weight_decay": True},
         0.01)
    return cases


# Small cases: ranks 1 to 4, an all-zero tensor (zero norm) and one that never gets a gradient.
SMALL_TENSORS = [("bias", [5]), ("weight", [4, 3]), ("seq", [2, 2, 3]), ("conv", [2, 3, 2, 2]),
                 ("zero_init", [6]), ("frozen", [3])]

# Large cases: the lattice parameters of each tensor's initial value and gradients.
LARGE_TENSORS = [
    # name, shape, init lattice (or None: zeros), gradient lattice (a, b, c)
    ("big", [300, 250], dict(a=7, b=0, c=3, scale=0.5), dict(a=13, b=101, c=29)),
    ("zero_init", [6], None, dict(a=3, b=7, c=11)),
]
LARGE_GRAD_SCALES = [1.0, 0.1, 0.01]
SAMPLE_EVERY = 997


def lattice(n, s, a, b, c, scale):
    """(((a i + b s + c) mod 1000) / 500 - 1) * scale for i < n, in Python floats (f64)."""
    return [(((a * i + b * s + c) % 1000) / 500.0 - 1.0) * scale for i in range(n)]


def small_params(gen, dtype):
    out = []
    for name, shape in SMALL_TENSORS:
        if name == "zero_init":
            value = torch.zeros(shape, dtype=dtype)
        else:
            value = torch.randn(shape, generator=gen, dtype=dtype) * 0.5
        out.append((name, torch.nn.Parameter(value)))
    return out


def small_grad(gen, name, p, step, dtype, grad_scale):
    """A pull of 0.5 (p - 0.25) plus 0.3 standard normal noise, scaled by 1, 0.1, 0.01 in
    turn (times grad_scale); the bias gradient is exactly zero every fifth step, the frozen
    tensor never has one. The draws happen in tensor order, gradients before the step."""
    if name == "frozen":
        return None
    if name == "bias" and step % 5 == 4:
        return torch.zeros_like(p)
    noise = torch.randn(p.shape, generator=gen, dtype=dtype)
    g = (0.5 * (p.detach() - 0.25) + 0.3 * noise) * 10.0 ** (-(step % 3))
    return g if grad_scale == 1.0 else g * grad_scale


def large_params(dtype):
    out, specs = [], []
    for name, shape, init, _ in LARGE_TENSORS:
        n = math.prod(shape)
        if init is None:
            value, spec = torch.zeros(shape, dtype=dtype), [0.0] * n
        else:
            spec = {"lattice": dict(init, s=0)}
            value = torch.tensor(lattice(n, **spec["lattice"]), dtype=torch.float64).to(dtype).reshape(shape)
        out.append((name, torch.nn.Parameter(value)))
        specs.append(spec)
    return out, specs


def large_grads(step, dtype):
    grads, specs = [], []
    for _, shape, _, g in LARGE_TENSORS:
        spec = dict(g, s=step, scale=LARGE_GRAD_SCALES[step % 3])
        values = lattice(math.prod(shape), **spec)
        grads.append(torch.tensor(values, dtype=torch.float64).to(dtype).reshape(shape))
        specs.append({"lattice": spec})
    return grads, specs


# ---------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------

def build(case, params, optimizer_class=None, overrides=None, wrapper_class=None, wrapper_overrides=None):
    cls = optimizer_class or GOLDEN_CLASS[case["optimizer"]]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in case["config"].items()}
    kwargs.update(overrides or {})
    opt = cls([p for _, p in params], lr=case["lr"], **kwargs)
    if case["wrapper"]:
        wcls = wrapper_class or WRAPPER_CLASS[case["wrapper"]]
        opt = wcls(opt, **case["wrapper_config"], **(wrapper_overrides or {}))
    return opt


def flat(t):
    return t.detach().flatten().tolist()


def encode(values, final):
    """A tensor's expectation: the full list for small tensors; for tensors longer than
    SAMPLE_EVERY, every SAMPLE_EVERY-th value plus the last, and after the final step also
    f64 sums over all elements."""
    if values.numel() <= SAMPLE_EVERY:
        return flat(values)
    v = values.detach().flatten()
    out = {"sample_every": SAMPLE_EVERY, "values": v[::SAMPLE_EVERY].tolist(), "last": v[-1].item()}
    if final:
        d = v.double()
        out.update(sum=d.sum().item(), sum_sq=(d * d).sum().item(), abs_sum=d.abs().sum().item())
    return out


def state_of(opt, params, stepped, final, wrapped):
    """One entry per parameter: None if it never had a gradient (and no wrapper holds slow
    weights for it), else the crate's state names mapped to values."""
    inner = opt.base_optimizer if wrapped else opt
    out = []
    for k, (_, p) in enumerate(params):
        entry = None
        if stepped[k]:
            entry = {}
            for key, value in inner.state.get(p, {}).items():
                name = HOLOCRON_STATE_NAMES.get(key, key)
                if name not in CRATE_STATE_NAMES:
                    continue
                if name == "time":
                    entry[name] = int(value)
                else:
                    entry[name] = encode(value, final)
        if wrapped:
            entry = entry or {}
            entry["slow"] = encode(opt.param_groups[0]["params"][k], final)
        out.append(entry)
    return out


def run(case, seed, dtype, with_state=True, feed=None, **variant):
    """Runs `case` and returns its JSON document. `variant` swaps classes or arguments
    (see `build`) for the checks. With `feed` (an earlier document of the case) the initial
    parameters and the gradients are taken from it instead of being generated."""
    large = case["kind"] == "large"
    gen = torch.Generator().manual_seed(seed)
    if feed is not None:
        params = [(p["name"], torch.nn.Parameter(torch.tensor(p["init"], dtype=dtype).reshape(p["shape"])))
                  for p in feed["params"]]
        init_specs = [p["init"] for p in feed["params"]]
    elif large:
        params, init_specs = large_params(dtype)
    else:
        params = small_params(gen, dtype)
        init_specs = [flat(p) for _, p in params]
    opt = build(case, params, **variant)
    doc = dict(
        name=case["name"], optimizer=case["optimizer"], config=case["config"], lr=case["lr"],
        wrapper=case["wrapper"], wrapper_config=case["wrapper_config"],
        dtype=str(dtype).replace("torch.", ""), num_steps=case["steps"],
        params=[dict(name=n, shape=list(p.shape), init=spec) for (n, p), spec in zip(params, init_specs)],
        steps=[],
    )
    stepped = [False] * len(params)
    for step in range(case["steps"]):
        final = step == case["steps"] - 1
        if feed is not None:
            grad_specs = feed["steps"][step]["grads"]
            grads = [None if g is None else torch.tensor(g, dtype=dtype).reshape(p.shape)
                     for g, (_, p) in zip(grad_specs, params)]
        elif large:
            grads, grad_specs = large_grads(step, dtype)
        else:
            grads = [small_grad(gen, n, p, step, dtype, case["grad_scale"]) for n, p in params]
            grad_specs = [None if g is None else flat(g) for g in grads]
        for k, ((_, p), g) in enumerate(zip(params, grads)):
            p.grad = None if g is None else g.clone()
            stepped[k] |= g is not None
        opt.step()
        entry = dict(grads=grad_specs, params=[encode(p, final) for _, p in params])
        if with_state:
            entry["state"] = state_of(opt, params, stepped, final, bool(case["wrapper"]))
        doc["steps"].append(entry)
    return doc


def keep_inputs(case, seed, dtype, old):
    """The earlier document `old` with the state added: its gradients are replayed through
    the reference, which must land on its parameters up to rounding (REPLAY_LIMIT), and the
    replay's state is attached to each step. Its inputs and parameters stay as they are."""
    replay = run(case, seed, dtype, feed=old)
    assert len(old["steps"]) == case["steps"], (case["name"], len(old["steps"]))
    diff, _ = max_rel_diff(replay, old)
    assert diff <= REPLAY_LIMIT[dtype], (case["name"], dtype, diff)
    head = {k: v for k, v in old.items() if k not in ("params", "steps")}
    head["num_steps"] = case["steps"]
    steps = [dict(s, state=r["state"]) for s, r in zip(old["steps"], replay["steps"], strict=True)]
    return dict(head, params=old["params"], steps=steps), diff


# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------

def trajectory(doc):
    """Every parameter value after every step, as (step, tensor, values) rows."""
    return [(i, k, v if isinstance(v, list) else v["values"] + [v["last"]])
            for i, s in enumerate(doc["steps"]) for k, v in enumerate(s["params"])]


def max_rel_diff(doc, ref):
    """max |a - b| / max(|b|, 1e-2) over the trajectories (b: `ref`); a NaN on one side only
    counts as infinite, NaN on both sides as equal. Returns (value, 1-based step)."""
    worst, at = 0.0, 0
    for (i, _, a), (_, _, b) in zip(trajectory(doc), trajectory(ref), strict=True):
        for x, y in zip(a, b, strict=True):
            if math.isnan(x) or math.isnan(y):
                d = 0.0 if (math.isnan(x) and math.isnan(y)) else math.inf
            else:
                d = abs(x - y) / max(abs(y), 1e-2)
            if d > worst:
                worst, at = d, i + 1
    return worst, at


def rectified_from(config):
    """First 1-based step at which holocron's RaLars takes RAdam's rectified branch."""
    beta_2 = (config.get("betas") or [0.9, 0.999])[1]
    rho_inf = 2 / (1 - beta_2) - 1
    for t in range(1, 100000):
        bc_2 = 1 - beta_2**t
        if rho_inf - 2 * t * (1 - bc_2) / bc_2 > 4:
            return t
    raise AssertionError("never rectified")


# How the epsilon probe takes eps out, per optimizer: (description, run variant).
EPS_PROBES = {
    "LAMB": ("eps = 0 (eps only appears in the denominator)", dict(overrides={"eps": 0.0})),
    "RaLars": ("eps = 0 (eps only appears in the denominator)", dict(overrides={"eps": 0.0})),
    "Adan": ("eps = 0 (eps only appears in the denominator)", dict(overrides={"eps": 0.0})),
    "AdEMAMix": ("eps = 0 (eps only appears in the denominator)", dict(overrides={"eps": 0.0})),
    # The belief holds eps / (1 - beta_2) and more, so sqrt(s) >> eps: the denominator's eps
    # alone barely matters (recorded below as `denominator_only`); eps = 0 takes it out of
    # both places.
    "AdaBelief": ("eps = 0 (removes eps from the belief s and from the denominator)",
                  dict(overrides={"eps": 0.0})),
    "TAdam": ("eps removed from sqrt(v_hat) + eps only (ProbeTAdam); eps inside the weight w_t kept",
              dict(optimizer_class=ProbeTAdam, overrides={"eps_in_denominator": False})),
    "AdamP": ("eps removed from sqrt(v_hat) + eps only (ProbeAdamP); eps of the projection kept",
              dict(optimizer_class=ProbeAdamP, overrides={"eps_in_denominator": False})),
}


def eps_sensitivity(case, seed, dtype, doc):
    """Reruns the case without eps (EPS_PROBES) and checks that its parameter trajectory
    leaves the golden one by more than CLEAR_MARGIN somewhere."""
    method, variant = EPS_PROBES[case["optimizer"]]
    probe = run(case, seed, dtype, with_state=False, **variant)
    diff, step = max_rel_diff(probe, doc)
    assert math.isfinite(diff) and diff > CLEAR_MARGIN, (case["name"], diff)
    out = {"method": method, "max_rel_diff": diff, "at_step": step, "threshold": CLEAR_MARGIN}
    if case["optimizer"] == "AdaBelief":
        probe = run(case, seed, dtype, with_state=False, overrides={"eps_in_denominator": False})
        out["denominator_only_max_rel_diff"] = max_rel_diff(probe, doc)[0]
    return out


def without(config, *keys):
    return {k: v for k, v in config.items() if k not in keys}


def self_checks(cases, seed):
    """Each reference class against holocron, in f64 on the cases that use it: with the
    departure switched off it reproduces holocron's optimizer (to SAME); with it on, the
    departure shows wherever the case exercises it: by more than OUTSIDE_F32 in every such
    case and by more than CLEAR_MARGIN in at least one."""
    index = {c["name"]: (i, c) for i, c in enumerate(cases)}
    # (title, cases, the switch that turns the departure off, holocron's own optimizer or
    #  wrapper, holocron keywords to drop, cases where the departure must not show)
    departures = [
        ("LARS: trust ratio before momentum, scale_clip applied",
         ["lars_default", "lars_momentum", "lars_momentum_wd_dampening", "lars_nesterov_wd_clip"],
         dict(overrides={"holocron_order": True}), dict(optimizer_class=holo.LARS), (),
         {"lars_default"}),
        ("LAMB: bias-corrected moments",
         ["lamb_default", "lamb_wd", "lamb_clip_betas", "lamb_no_bias_correction_wd"],
         dict(overrides={"bias_correction": False}), dict(optimizer_class=holo.LAMB), ("bias_correction",),
         {"lamb_no_bias_correction_wd"}),
        ("AdaBelief: eps added to the stored belief",
         ["adabelief_default", "adabelief_amsgrad_wd"],
         dict(overrides={"eps_in_belief": False}), dict(optimizer_class=holo.AdaBelief), (), set()),
        ("Adan: previous gradient kept, no L2 on the gradient",
         ["adan_default", "adan_wd", "adan_amsgrad"],
         dict(overrides={"holocron_bugs": True}), dict(optimizer_class=holo.Adan), (), set()),
        ("Scout: 0/0 elements count 0 (holocron: NaN rate, fast weights reset)",
         ["scout_sgd", "scout_adabelief"],
         dict(wrapper_overrides={"nan_guard": False}), dict(wrapper_class=holo_wrap.Scout), (), set()),
        ("AdEMAMix: the paper's warm-ups of alpha and beta_3 (holocron has none)",
         ["ademamix_warmup", "ademamix_beta_3_warmup_wd"],
         dict(overrides={"alpha_warmup": None, "beta_3_warmup": None}), dict(optimizer_class=holo.AdEMAMix),
         ("alpha_warmup", "beta_3_warmup"), set()),
        ("LARS, LAMB: rank-1 tensors left out of weight decay and the trust ratio (optax's masks)",
         ["lars_vectors_masked", "lamb_vectors_masked", "lamb_vectors_out_of_decay"],
         dict(overrides={"exclude_vectors_from_weight_decay": False, "exclude_vectors_from_trust_ratio": False}),
         dict(), ("exclude_vectors_from_weight_decay", "exclude_vectors_from_trust_ratio"), set()),
        # Not departures: the re-typed copies the epsilon probe uses must be holocron.
        ("ProbeTAdam is holocron's TAdam", ["tadam_default", "tadam_dof_wd", "tadam_amsgrad"],
         dict(optimizer_class=ProbeTAdam), dict(), (), None),
        ("ProbeAdamP is holocron's AdamP", ["adamp_default", "adamp_delta_wd", "adamp_amsgrad"],
         dict(optimizer_class=ProbeAdamP), dict(), (), None),
        ("WarmAdEMAMix without warm-ups is holocron's AdEMAMix", ["ademamix_default", "ademamix_alpha_wd"],
         dict(), dict(optimizer_class=holo.AdEMAMix), (), None),
    ]
    print(f"self-checks (f64; measure max |a - b| / max(|b|, 1e-2) against holocron; "
          f"'off' must be <= {SAME:g}; 'on' > {OUTSIDE_F32:g} unless marked same, "
          f"and > {CLEAR_MARGIN:g} in one case at least):")
    for title, names, off, holocron, drop, same_in in departures:
        print(f"  {title}")
        largest = 0.0
        for name in names:
            i, case = index[name]
            s = seed + i
            reference = dict(case, config=without(case["config"], *drop))
            theirs = run(reference, s, torch.float64, with_state=False, **holocron)
            if same_in is None:
                ours_off = run(case, s, torch.float64, with_state=False, **off)
                d_off, _ = max_rel_diff(ours_off, theirs)
                print(f"    {name:34} copy vs holocron {d_off:.2e}")
                assert d_off <= SAME, (title, name, d_off)
                continue
            ours_on = run(case, s, torch.float64, with_state=False)
            ours_off = run(case, s, torch.float64, with_state=False, **off)
            d_on, step_on = max_rel_diff(ours_on, theirs)
            d_off, _ = max_rel_diff(ours_off, theirs)
            expect = "same" if name in same_in else "differs"
            print(f"    {name:34} off {d_off:.2e}   on {d_on:.2e} (largest at step {step_on})   expected: {expect}")
            assert d_off <= SAME, (title, name, "departure off does not reproduce holocron", d_off)
            if name in same_in:
                assert d_on <= SAME, (title, name, d_on)
            else:
                assert d_on > OUTSIDE_F32, (title, name, "departure does not show", d_on)
            largest = max(largest, d_on)
        assert same_in is None or largest > CLEAR_MARGIN, (title, largest)


def f32_rounding(cases, seed, directory):
    """How far f32 rounding alone moves each f32 case: its inputs replayed in f64 (large
    cases: regenerated in f64), against its f32 trajectory, in the tolerance measure."""
    print(f"f32 rounding (f32 files of {directory} replayed in f64; max |a - b| / max(|b|, 1e-2)):")
    worst = 0.0
    for i, case in enumerate(cases):
        path = directory / f"{case['name']}.f32.json"
        if not path.exists():
            continue
        f32 = json.loads(path.read_text())
        feed = None if case["kind"] == "large" else f32
        f64 = run(case, seed + i, torch.float64, with_state=False, feed=feed)
        diff, step = max_rel_diff(f64, f32)
        worst = max(worst, diff)
        print(f"  {case['name']:34} {diff:.2e} (step {step})")
    print(f"  largest: {worst:.2e}")


def compare(out_dir, old_dir, names):
    """Bit-for-bit comparison of the regenerated files with those in `old_dir`."""
    keys = ["name", "optimizer", "config", "lr", "wrapper", "wrapper_config", "dtype"]
    same, differ, missing = 0, [], 0
    for name in names:
        for suffix in ("f32", "f64"):
            old_path = old_dir / f"{name}.{suffix}.json"
            if not old_path.exists():
                missing += 1
                continue
            old = json.loads(old_path.read_text())
            new = json.loads((out_dir / old_path.name).read_text())
            problems = [k for k in keys if old[k] != new[k]]
            if [(p["name"], p["shape"], p["init"]) for p in old["params"]] != \
                    [(p["name"], p["shape"], p["init"]) for p in new["params"]]:
                problems.append("initial parameters")
            if len(old["steps"]) != len(new["steps"]):
                problems.append("step count")
            else:
                for i, (a, b) in enumerate(zip(old["steps"], new["steps"])):
                    if a["grads"] != b["grads"]:
                        problems.append(f"grads of step {i + 1}")
                        break
                    if a["params"] != b["params"]:
                        d = max(abs(x - y) for u, v in zip(a["params"], b["params"]) for x, y in zip(u, v))
                        problems.append(f"params of step {i + 1} (max abs difference {d:.3e})")
                        break
            if problems:
                differ.append((old_path.name, problems))
            else:
                same += 1
    print(f"compare with {old_dir}: {same} files bit-for-bit equal in inputs and parameters, "
          f"{len(differ)} differ, {missing} new")
    for file, problems in differ:
        print(f"  DIFFERS {file}: {'; '.join(problems)}")
    return not differ


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="case names to write (default: all)")
    parser.add_argument("--compare", type=Path, help="directory of earlier files to compare with")
    parser.add_argument("--keep", type=Path, help="directory of earlier files whose inputs and parameters "
                        "are kept (the state is added by replaying their gradients)")
    parser.add_argument("--f32-rounding", action="store_true", help="only report how far f32 rounding "
                        "moves the f32 cases in OUT_DIR (their inputs replayed in f64), then stop")
    parser.add_argument("--no-checks", action="store_true", help="skip the holocron self-checks")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cases = all_cases()
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names)
    if args.f32_rounding:
        f32_rounding(cases, args.seed, args.out_dir)
        return
    if not args.no_checks:
        self_checks(cases, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, case in enumerate(cases):
        if args.only and case["name"] not in args.only:
            continue
        for dtype, suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
            kept = args.keep / f"{case['name']}.{suffix}.json" if args.keep else None
            if kept is not None and kept.exists() and case["kind"] == "small":
                doc, diff = keep_inputs(case, args.seed + i, dtype, json.loads(kept.read_text()))
                print(f"  {kept.name:40} kept; a replay of its gradients here differs by {diff:.2e}")
            else:
                doc = run(case, args.seed + i, dtype)
            for _, _, values in trajectory(doc):
                assert all(math.isfinite(x) for x in values), case["name"]
            extra = {}
            if case.get("rectified"):
                first = rectified_from(case["config"])
                assert 1 < first <= case["steps"], first
                extra["rectified_from_step"] = first
            if case.get("eps_probe"):
                extra["eps_sensitivity"] = eps_sensitivity(case, args.seed + i, dtype, doc)
            if extra:
                # Put the new fields before the (long) parameter and step lists.
                head = {k: v for k, v in doc.items() if k not in ("params", "steps")}
                doc = dict(head, **extra, params=doc["params"], steps=doc["steps"])
            path = args.out_dir / f"{case['name']}.{suffix}.json"
            path.write_text(json.dumps(doc, separators=(",", ":")))
            if "eps_sensitivity" in extra:
                e = extra["eps_sensitivity"]
                print(f"  {path.name:40} eps probe: max rel diff {e['max_rel_diff']:.3g} at step {e['at_step']}")
            if "rectified_from_step" in extra:
                print(f"  {path.name:40} rectified from step {extra['rectified_from_step']}")
        written.append(case["name"])
    if not args.only:
        lines = ["# Every golden case: its name, then its files. tests/golden.rs fails when one is",
                 "# missing. Written by tools/golden/generate.py."]
        lines += [f"{n} {n}.f32.json {n}.f64.json" for n in written]
        (args.out_dir / "CASES").write_text("\n".join(lines) + "\n")
    print(f"{len(written)} cases x 2 dtypes -> {args.out_dir}")
    if args.compare and not compare(args.out_dir, args.compare, written):
        sys.exit(1)


if __name__ == "__main__":
    main()
