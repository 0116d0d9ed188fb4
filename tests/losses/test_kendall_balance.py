"""Kendall weighting reaches its balance point exp(−θ_k)·L_k = 1 within a short (CPU-budget) run."""

from __future__ import annotations

import math

import pytest
import torch

from tascmt.losses import make_balancer
from tascmt.losses.uncertainty import KENDALL_LR, MIN_INIT_LOSS, KendallBalancer

TYPICAL = (0.005, 0.09)  # (L_interp, L_seg) measured in training


def _losses(values):
    return {"interp": torch.tensor(float(values[0])), "seg": torch.tensor(float(values[1]))}


def _drive(bal, schedule, steps):
    """Adam over ``param_groups()`` (as the trainer builds it); returns the (steps, 2) weighted terms
    exp(−θ)·L after each step."""
    opt = torch.optim.Adam(bal.param_groups())
    terms = []
    for t in range(steps):
        values = schedule(t)
        opt.zero_grad()
        bal.combine(_losses(values)).backward()
        opt.step()
        terms.append(torch.exp(-bal.theta.detach()) * torch.tensor(values))
    return torch.stack(terms)


def _settled_from(terms, tol=0.1):
    """First step after which every weighted term stays within 1 ± tol (len(terms) if never)."""
    ok = ((terms - 1).abs() <= tol).all(dim=1)
    bad = torch.nonzero(~ok).flatten()
    return 0 if len(bad) == 0 else int(bad[-1]) + 1


def test_from_zero_the_default_lr_balances_within_700_steps():
    bal = make_balancer("kendall", init="zero")
    assert bal.lr == KENDALL_LR == 1e-2
    terms = _drive(bal, lambda t: TYPICAL, 1500)
    assert _settled_from(terms) <= 700  # measured: 663 (lr 1e-3 is still at 0.02/0.34 after 1,400)
    assert torch.all((terms[-1] - 1).abs() < 1e-3)


def test_from_zero_the_old_lr_does_not_balance():
    terms = _drive(make_balancer("kendall", init="zero", lr=1e-3), lambda t: TYPICAL, 1400)
    w = terms[-1]
    assert w[1] / w[0] > 10  # segmentation still outweighs interpolation by more than 10:1


def test_first_loss_init_sets_theta_to_log_loss_exactly():
    bal = make_balancer("kendall")
    assert bal.init == "first_loss" and not bool(bal.initialised)
    assert bal.weights() == {"interp": 1.0, "seg": 1.0}  # nothing happens before the first combine
    total = bal.combine(_losses(TYPICAL))
    assert torch.equal(bal.theta.detach(), torch.log(torch.tensor(TYPICAL)))
    assert bool(bal.initialised)
    assert total.item() == pytest.approx(2 + math.log(TYPICAL[0]) + math.log(TYPICAL[1]), rel=1e-6)
    bal.combine(_losses((0.5, 0.5)))  # later losses do not re-initialise
    assert torch.equal(bal.theta.detach(), torch.log(torch.tensor(TYPICAL)))


def test_first_loss_init_only_in_training_mode_and_from_finite_losses():
    bal = make_balancer("kendall")
    bal.eval()
    bal.combine(_losses(TYPICAL))
    assert not bool(bal.initialised) and torch.all(bal.theta == 0)
    bal.train()
    bal.combine(_losses((math.nan, 0.1)))  # a skipped (non-finite) step is not used
    assert not bool(bal.initialised) and torch.all(bal.theta == 0)
    bal.combine(_losses((0.0, 0.1)))  # a zero loss is raised to MIN_INIT_LOSS, never θ = −∞
    assert bal.theta.detach().tolist() == pytest.approx([math.log(MIN_INIT_LOSS), math.log(0.1)])
    zero = make_balancer("kendall", init="zero")
    assert bool(zero.initialised)
    zero.combine(_losses(TYPICAL))
    assert torch.all(zero.theta == 0)
    with pytest.raises(ValueError, match="init"):
        make_balancer("kendall", init="ones")


def test_first_loss_init_is_balanced_at_once_and_stays():
    terms = _drive(make_balancer("kendall"), lambda t: TYPICAL, 1000)
    assert _settled_from(terms, tol=0.02) == 0  # measured max deviation 0.009


def test_first_loss_init_tracks_drifting_losses():
    """L_interp decays 0.01 → 0.003 over 2,000 steps, and the losses drop fast early in training."""
    def drift(t):
        return (0.01 * 0.3 ** (t / 2000), 0.09)

    terms = _drive(make_balancer("kendall"), drift, 2000)
    assert _settled_from(terms, tol=0.05) == 0  # measured max deviation 0.009

    def early_drop(t):
        e = math.exp(-t / 150)
        return (0.005 + 0.045 * e, 0.09 + 0.21 * e)

    terms = _drive(make_balancer("kendall"), early_drop, 1000)
    assert _settled_from(terms, tol=0.05) == 0  # measured max deviation 0.007
    slow = _drive(make_balancer("kendall", lr=1e-3), early_drop, 1000)
    assert _settled_from(slow) == 1000  # the old lr cannot follow: never within 1 ± 0.1 to the end


def test_state_dict_keeps_the_initialised_flag():
    a = make_balancer("kendall")
    a.combine(_losses(TYPICAL))
    state = a.state_dict()
    assert set(state) == {"theta", "initialised"} and bool(state["initialised"])
    b = make_balancer("kendall")
    b.load_state_dict(state)
    assert bool(b.initialised) and torch.equal(b.theta, a.theta)
    b.combine(_losses((0.5, 0.5)))  # resumed: no second initialisation
    assert torch.equal(b.theta.detach(), torch.log(torch.tensor(TYPICAL)))
    fresh = make_balancer("kendall").state_dict()  # not yet initialised: the flag travels as False
    c = make_balancer("kendall")
    c.load_state_dict(fresh)
    assert not bool(c.initialised)
    c.combine(_losses(TYPICAL))
    assert bool(c.initialised)


def test_state_dict_survives_torch_save(tmp_path):
    a = make_balancer("kendall")
    a.combine(_losses(TYPICAL))
    torch.save({"balancer": a.state_dict()}, tmp_path / "ckpt.pt")
    b = make_balancer("kendall")
    b.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["balancer"])
    assert bool(b.initialised) and b.weights() == a.weights()


def test_old_state_dict_without_the_flag_loads():
    trained = {"theta": torch.tensor([-2.0, 0.5])}  # saved before the flag existed, θ had moved
    b = make_balancer("kendall")
    b.load_state_dict(trained)  # strict by default: no missing-key error
    assert bool(b.initialised)
    b.combine(_losses(TYPICAL))
    assert b.theta.detach().tolist() == [-2.0, 0.5]  # kept, not re-initialised
    untouched = {"theta": torch.zeros(2)}  # an old run that never moved θ: initialised on its next step
    c = make_balancer("kendall")
    c.load_state_dict(untouched)
    assert not bool(c.initialised)
    c.combine(_losses(TYPICAL))
    assert torch.equal(c.theta.detach(), torch.log(torch.tensor(TYPICAL)))
    z = make_balancer("kendall", init="zero")
    z.load_state_dict(untouched)
    assert bool(z.initialised)


def test_zero_and_first_loss_states_are_interchangeable():
    a = make_balancer("kendall", init="zero")
    b = KendallBalancer()
    b.load_state_dict(a.state_dict())  # same keys whatever the init
    assert bool(b.initialised)  # a zero-init run's θ is never overwritten


def test_paper_form_unchanged_by_the_kendall_defaults():
    with pytest.warns(UserWarning):
        bal = make_balancer("paper")
    assert bal.lr == 1e-3 and "initialised" not in bal.state_dict()
    bal.combine(_losses(TYPICAL))
    assert torch.all(bal.theta == 0)  # θ₀ = 0, no first-loss initialisation
