from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tascmt.errors import ConfigError
from tascmt.losses import list_balancers, make_balancer, unweighted_total

FIXED_L = {"interp": 0.002, "seg": 0.05}


def _const_losses(values=FIXED_L):
    return {k: torch.tensor(v) for k, v in values.items()}


def _run_sgd(balancer, steps, lr=5e-2):
    groups = [{**g, "lr": lr} for g in balancer.param_groups()]
    opt = torch.optim.SGD(groups)
    thetas = []
    for _ in range(steps):
        opt.zero_grad()
        balancer.combine(_const_losses()).backward()
        opt.step()
        thetas.append(balancer.theta.detach().clone())
    return torch.stack(thetas)  # (steps, K)


def test_registry_and_unknown_name():
    assert set(list_balancers()) == {"kendall", "paper", "fixed", "gradnorm", "dwa"}
    with pytest.raises(ConfigError, match="kendall"):
        make_balancer("uncertainty")
    with pytest.raises(ConfigError, match="alpha"):
        make_balancer("kendall", alpha=1.0)


def test_kendall_weights_converge_to_inverse_loss():
    bal = make_balancer("kendall", init="zero")
    assert bal.weights() == {"interp": 1.0, "seg": 1.0}
    _run_sgd(bal, 600)
    w = bal.weights()
    assert w["interp"] == pytest.approx(1 / FIXED_L["interp"], rel=0.01)
    assert w["seg"] == pytest.approx(1 / FIXED_L["seg"], rel=0.01)
    assert bal.theta.detach().tolist() == pytest.approx([math.log(v) for v in FIXED_L.values()], abs=0.01)


def test_paper_form_diverges_monotonically():
    with pytest.warns(UserWarning, match="no minimum"):
        bal = make_balancer("paper")
    thetas = _run_sgd(bal, 500)
    steps = torch.diff(thetas, dim=0)
    assert torch.all(steps < 0)  # strictly decreasing every step
    assert torch.all(steps <= -5e-2 + 1e-5)  # gradient e^θ·L + 1 ≥ 1 → at least lr per step: no bound
    assert torch.all(thetas[-1] < -24.0)
    w = bal.weights()
    assert w["paper_form_diverges"] == 1.0 and w["interp"] < 1e-8
    assert bal.combine(_const_losses()).item() < -48.0  # total → −∞


def test_fixed_is_exact_weighted_sum():
    losses = {"interp": torch.tensor(0.25), "seg": torch.tensor(2.0)}
    for w in [(0.3, 0.7), (0.4, 0.6), (0.5, 0.5)]:
        bal = make_balancer("fixed", weights=w)
        assert bal.combine(losses).item() == pytest.approx(w[0] * 0.25 + w[1] * 2.0)
        assert bal.param_groups() == []
    assert make_balancer("fixed").combine(losses).item() == pytest.approx(2.25)
    by_name = make_balancer("fixed", weights={"seg": 2.0, "interp": 4.0})
    assert by_name.weights() == {"interp": 4.0, "seg": 2.0}
    with pytest.raises(ConfigError, match="2 values"):
        make_balancer("fixed", weights=(1.0,))


def test_combine_checks_task_keys():
    with pytest.raises(ValueError, match="expected losses"):
        make_balancer("kendall").combine({"interp": torch.tensor(1.0)})


def test_param_groups_have_own_lr_and_no_weight_decay():
    for name, lr in (("kendall", 1e-2), ("gradnorm", 1e-3)):  # Kendall's θ has its own, larger default
        (group,) = make_balancer(name).param_groups()
        assert group["lr"] == lr and group["weight_decay"] == 0.0
        (group,) = make_balancer(name, lr=None).param_groups()  # None → the strategy's default
        assert group["lr"] == lr
        (group,) = make_balancer(name, lr=5e-3).param_groups()
        assert group["lr"] == 5e-3
    with pytest.warns(UserWarning):
        (group,) = make_balancer("paper").param_groups()
    assert group["lr"] == 1e-3
    assert make_balancer("dwa").param_groups() == []
    assert make_balancer("fixed", lr=None).param_groups() == []
    model = nn.Linear(2, 2)
    bal = make_balancer("kendall")
    opt = torch.optim.AdamW([{"params": model.parameters()}, *bal.param_groups()], lr=1e-4, weight_decay=1e-5)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-2]
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-5, 0.0]


def test_dwa_weights_favor_the_slowest_task():
    bal = make_balancer("dwa")
    losses = _const_losses({"interp": 1.0, "seg": 1.0})
    bal.epoch_end({"interp": 1.0, "seg": 1.0})
    assert bal.weights() == {"interp": 1.0, "seg": 1.0}  # epochs 1 and 2: equal weights
    bal.epoch_end({"interp": 0.5, "seg": 0.9})  # seg decreased least
    w = bal.weights()
    assert w["seg"] > w["interp"]
    assert w["seg"] + w["interp"] == pytest.approx(2.0)
    expected = 2 * math.exp(0.9 / 2) / (math.exp(0.9 / 2) + math.exp(0.5 / 2))
    assert w["seg"] == pytest.approx(expected, rel=1e-6)
    assert bal.combine(losses).item() == pytest.approx(2.0, rel=1e-6)
    bal.epoch_end({"interp": 0.5, "seg": 0.45})  # now interp stalls (ratio 1.0 vs 0.5)
    assert bal.weights()["interp"] > bal.weights()["seg"]


def _gradnorm_toy(scale_small=0.01):
    """Shared layer W feeds two task heads; task 'interp' has much smaller gradients on W."""
    torch.manual_seed(0)
    shared = nn.Linear(4, 8)
    heads = nn.ModuleDict({"interp": nn.Linear(8, 1), "seg": nn.Linear(8, 1)})
    x = torch.randn(32, 4)
    y = {"interp": torch.randn(32, 1), "seg": torch.randn(32, 1)}

    def losses():
        h = torch.relu(shared(x))
        out = {k: ((heads[k](h) - y[k]) ** 2).mean() for k in heads}
        out["interp"] = out["interp"] * scale_small
        return out

    return shared, heads, losses


def test_gradnorm_raises_weight_of_task_with_small_gradients():
    shared, heads, losses = _gradnorm_toy()
    bal = make_balancer("gradnorm")
    opt = torch.optim.SGD([{"params": [*shared.parameters(), *heads.parameters()], "lr": 1e-3},
                           *bal.param_groups()], lr=1e-3)
    history = []
    for _ in range(20):
        opt.zero_grad()
        l = losses()
        total = bal.combine(l, shared_params=list(shared.parameters()))
        w = bal.weights()
        assert total.item() == pytest.approx(w["interp"] * l["interp"].item() + w["seg"] * l["seg"].item(),
                                             rel=1e-5)
        total.backward()
        opt.step()
        history.append(bal.weights()["interp"])
    assert history[-1] > history[0] > 1.0
    w = bal.weights()
    assert w["interp"] + w["seg"] == pytest.approx(2.0)
    assert w["interp"] > w["seg"]
    assert bal.last_grad_norms["interp"] < bal.last_grad_norms["seg"]


def test_gradnorm_does_not_change_model_gradients():
    shared, _, losses = _gradnorm_toy()
    l = losses()
    bal = make_balancer("gradnorm")
    bal.combine(l, shared_params=list(shared.parameters())).backward()
    got = [p.grad.clone() for p in shared.parameters()]
    assert bal.task_weights.grad is not None and bal.task_weights.grad[0] < 0  # descent raises w_interp
    for p in shared.parameters():
        p.grad = None
    unweighted_total(losses()).backward()  # weights are 1 at the first step
    for g, p in zip(got, shared.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-7)


def test_gradnorm_gradient_matches_hand_computation():
    """Equal gradient norms, but 'interp' trains slower (its loss ratio stays 1) → its weight rises."""
    p = torch.tensor(1.0, requires_grad=True)
    bal = make_balancer("gradnorm", alpha=1.5)
    bal.combine({"interp": p * 1.0, "seg": p * 1.0}, shared_params=[p])  # L(0) = (1, 1)
    assert bal.initial_losses.tolist() == [1.0, 1.0]
    bal.task_weights.grad = None
    bal.combine({"interp": p * 1.0, "seg": p * 1.0 - 0.5}, shared_params=[p])  # L = (1, 0.5), g = (1, 1)
    rate = torch.tensor([1.0, 0.5]) / 0.75
    target = 1.0 * rate**1.5  # mean(G) = 1
    expected = torch.sign(torch.ones(2) - target)  # ∂|w·g − target|/∂w with g = 1
    assert torch.allclose(bal.task_weights.grad, expected)
    assert bal.task_weights.grad[0] < 0 < bal.task_weights.grad[1]
    assert bal.last_grad_loss == pytest.approx(float((torch.ones(2) - target).abs().sum()), rel=1e-6)


def test_gradnorm_loss_scale_survives_unscaling():
    shared, _, losses = _gradnorm_toy()
    grads = []
    for scale in (1.0, 1024.0):
        bal = make_balancer("gradnorm")
        bal.combine(losses(), shared_params=list(shared.parameters()), loss_scale=scale)
        grads.append(bal.task_weights.grad / scale)  # what GradScaler.unscale_ leaves
    assert torch.allclose(grads[0], grads[1], rtol=1e-4)


def test_gradnorm_requires_shared_params_only_in_training():
    _, _, losses = _gradnorm_toy()
    bal = make_balancer("gradnorm")
    with pytest.raises(ValueError, match="shared_params"):
        bal.combine(losses())
    bal.eval()
    assert torch.isfinite(bal.combine(losses()))
    with torch.no_grad():
        bal.train()
        bal.combine(losses())
    assert bal.task_weights.grad is None


@pytest.mark.parametrize("name", ["kendall", "paper", "fixed", "gradnorm", "dwa"])
def test_state_dict_round_trip(name):
    kw = {"weights": (0.3, 0.7)} if name == "fixed" else {}
    with pytest.warns(UserWarning) if name == "paper" else _nullcontext():
        a = make_balancer(name, **kw)
        b = make_balancer(name)
    if name == "gradnorm":
        shared, _, losses = _gradnorm_toy()
        a.combine(losses(), shared_params=list(shared.parameters()))
        with torch.no_grad():
            a.task_weights.copy_(torch.tensor([1.4, 0.6]))
    elif name == "dwa":
        a.epoch_end({"interp": 1.0, "seg": 1.0})
        a.epoch_end({"interp": 0.3, "seg": 0.9})
    elif name in ("kendall", "paper"):
        with torch.no_grad():
            a.theta.copy_(torch.tensor([-2.0, 0.5]))
    b.load_state_dict(a.state_dict())
    assert b.weights() == a.weights()
    losses = _const_losses({"interp": 0.1, "seg": 0.2})
    assert b.combine(losses).item() == pytest.approx(a.combine(losses).item())
    if name == "dwa":  # history restored: the next epoch gives the same weights
        a.epoch_end({"interp": 0.2, "seg": 0.8})
        b.epoch_end({"interp": 0.2, "seg": 0.8})
        assert b.weights() == a.weights()


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_unweighted_total():
    assert unweighted_total({"interp": 0.5, "seg": 0.25}) == 0.75
    t = unweighted_total({"interp": torch.tensor(0.5), "seg": torch.tensor(0.25)})
    assert isinstance(t, torch.Tensor) and t.item() == 0.75
