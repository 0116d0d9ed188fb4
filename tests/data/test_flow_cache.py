"""The flow-midpoint base in the cache: computed once in prepare, served by the dataset, used by models."""

from __future__ import annotations

import numpy as np
import torch

from tascmt.data.cache import flow_file
from tascmt.data.dataset import TripletDataset
from tascmt.data.flow import flow_midpoint
from tascmt.data.prepare import prepare_dataset
from tascmt.data.synth import make_synthetic_task
from tascmt.models import create_model
from tascmt.models.baselines.inputs import model_input


def test_prepare_stores_flow_midpoints_and_dataset_serves_them(tmp_path):
    task = make_synthetic_task(tmp_path / "task", "heart", n_cases=3, size=40, n_slices=9, dz=1.25)
    m = prepare_dataset(task, tmp_path / "cache", size=32, gap_mm=1.25, flow_base=True, progress=False,
                        verbose=False)
    assert m.params["flow"] is not None
    rec = m.triplets[0]
    img = np.load(tmp_path / "cache" / "cases" / f"{rec['case_id']}_img.npy")
    stored = np.load(tmp_path / "cache" / flow_file(rec["case_id"]))[rec["flow_index"]]
    np.testing.assert_allclose(stored, flow_midpoint(img[rec["k0"]], img[rec["k2"]]).image, atol=1e-4)
    ds = TripletDataset(tmp_path / "cache", "train", tiles="whole")
    item = ds[0]
    r0 = ds.records[0]
    fmid = np.load(tmp_path / "cache" / flow_file(r0["case_id"]))[r0["flow_index"]]
    params = ds.normalizer.fit(img[r0["k0"]], img[r0["k2"]]) if r0["case_id"] == rec["case_id"] else None
    if params is not None:
        np.testing.assert_allclose(item["flow_mid"][0].numpy(), ds.normalizer.apply(fmid, params), atol=1e-6)
    model = create_model("tasc_swinmt", "tiny", interp_base="flow", img_size=32).eval()
    tiles = TripletDataset(tmp_path / "cache", "train", tiles="fixed")
    batch = torch.utils.data.default_collate([tiles[0]])
    x = model_input(model, batch)
    assert x.shape[1] == 3
    out = model.predict(x)
    torch.testing.assert_close(out["interp_residual"] + x[:, 2:3], model(x)["interp"])
