from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from tascmt.errors import CheckpointError
from tascmt.evaluation.metrics.lpips import (
    TAP_CHANNELS,
    Lpips,
    Vgg16Features,
    find_vgg_weights,
    load_lpips,
    lpips_available,
    lpips_value,
)

# torchvision vgg16().features: convolutions sit at these module indices.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A torchvision-format VGG16 file (+ classifier keys to ignore) and an LPIPS-release lin file."""
    folder = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(0)
    vgg = Vgg16Features().state_dict()
    vgg["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(vgg, folder / "vgg16-random.pth")
    save_file({k: v.contiguous() for k, v in vgg.items()}, str(folder / "vgg16.safetensors"))
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}
    torch.save(lin, folder / "vgg.pth")
    return folder, vgg, lin


def _images(seed=0, size=16):
    rng = np.random.default_rng(seed)
    return rng.random((size, size)).astype(np.float32), rng.random((size, size)).astype(np.float32)


def test_vgg_layout_matches_torchvision_keys():
    keys = set(Vgg16Features().state_dict())
    expected = {f"features.{i}.{p}" for i in TORCHVISION_CONV_INDICES for p in ("weight", "bias")}
    assert keys == expected
    lin_keys = {k for k in Lpips().state_dict() if k.startswith("lin")}
    assert lin_keys == {f"lin{k}.model.1.weight" for k in range(5)}


def test_loads_weights_from_files(weight_files):
    folder, vgg, lin = weight_files
    model = Lpips.from_paths(folder / "vgg16-random.pth", folder / "vgg.pth")
    assert torch.equal(model.net.features[28].weight, vgg["features.28.weight"])
    assert torch.equal(model.lin3.model[1].weight, lin["lin3.model.1.weight"])
    from_st = Lpips.from_paths(folder / "vgg16.safetensors", folder / "vgg.pth")
    assert torch.equal(from_st.net.features[0].bias, vgg["features.0.bias"])


def _reference_lpips(x0, x1, vgg, lin):
    """Independent functional re-computation of LPIPS v0.1 from the raw state dicts."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def feats(x):
        x = ((x * 2 - 1).expand(-1, 3, -1, -1) - shift) / scale
        out, conv = [], 0
        for block, n_conv in enumerate((2, 2, 3, 3, 3)):
            for _ in range(n_conv):
                i = TORCHVISION_CONV_INDICES[conv]
                x = F.relu(F.conv2d(x, vgg[f"features.{i}.weight"], vgg[f"features.{i}.bias"], padding=1))
                conv += 1
            out.append(x)
            if block < 4:
                x = F.max_pool2d(x, 2)
        return out

    total = 0.0
    for k, (a, b) in enumerate(zip(feats(x0), feats(x1))):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        total = total + F.conv2d((a - b) ** 2, lin[f"lin{k}.model.1.weight"]).mean()
    return float(total)


def test_matches_functional_reference_and_properties(weight_files):
    folder, vgg, lin = weight_files
    model = load_lpips(folder / "vgg16-random.pth", folder / "vgg.pth")
    a, b = _images()
    d = lpips_value(model, a, b)
    ref = _reference_lpips(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None], vgg, lin)
    assert d == pytest.approx(ref, rel=1e-4)
    assert d > 0
    assert lpips_value(model, a, a) == pytest.approx(0.0, abs=1e-7)
    assert lpips_value(model, b, a) == pytest.approx(d, rel=1e-5)
    batch = model(torch.from_numpy(np.stack([a, b]))[:, None], torch.from_numpy(np.stack([b, b]))[:, None])
    assert batch.shape == (2,) and batch[0].item() == pytest.approx(d, rel=1e-5) and batch[1].item() == 0


def test_paper_variant_is_unweighted_layer_mean(weight_files):
    folder, vgg, _ = weight_files
    paper = load_lpips(folder / "vgg16-random.pth", variant="paper")
    assert paper is not None and lpips_available(folder / "vgg16-random.pth", variant="paper")
    ones = {f"lin{k}.model.1.weight": torch.ones(1, c, 1, 1) for k, c in enumerate(TAP_CHANNELS)}
    v01 = Lpips("v0.1")
    v01.load_vgg(vgg)
    v01.load_lin(ones)
    a, b = _images(1)
    # with unit linear weights v0.1 sums the 5 per-layer values that the paper variant averages
    assert lpips_value(v01, a, b) == pytest.approx(5 * lpips_value(paper, a, b), rel=1e-5)
    assert lpips_value(paper, a, a) == pytest.approx(0.0, abs=1e-7)


def test_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_vgg_weights() is None
    assert not lpips_available()
    assert load_lpips() is None
    assert load_lpips(tmp_path / "nope.pth", tmp_path / "nope_lin.pth") is None
    a, b = _images()
    assert lpips_value(None, a, b) is None
    with pytest.raises(CheckpointError, match="VGG16"):
        Lpips.from_paths(tmp_path / "nope.pth")


def test_hub_cache_is_used_for_vgg(weight_files, tmp_path, monkeypatch):
    folder, _, _ = weight_files
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "vgg16-397923af.pth").write_bytes((folder / "vgg16-random.pth").read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_vgg_weights() == ckpt / "vgg16-397923af.pth"
    assert not lpips_available(lin_path=None)  # v0.1 still needs the linear heads
    assert lpips_available(lin_path=folder / "vgg.pth")
    assert load_lpips(lin_path=folder / "vgg.pth") is not None


def test_broken_files_raise_checkpoint_error(weight_files, tmp_path):
    folder, vgg, _ = weight_files
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        Lpips.from_paths(garbage, variant="paper")
    partial = {k: v for k, v in vgg.items() if k != "features.28.weight"}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"features\.28\.weight"):
        Lpips.from_paths(tmp_path / "partial.pth", variant="paper")
    torch.save({"lin0.model.1.weight": torch.ones(1, 3, 1, 1)}, tmp_path / "badlin.pth")
    with pytest.raises(CheckpointError, match=r"shape|missing"):
        Lpips.from_paths(folder / "vgg16-random.pth", tmp_path / "badlin.pth")
