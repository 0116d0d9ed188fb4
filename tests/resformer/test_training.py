"""Training and evaluation through the project's trainer (``ResFormerTrainer`` hooks), synthetic task."""

from __future__ import annotations

import json

import pytest

from tascmt.evaluation.resformer import evaluate_resformer, is_resformer_checkpoint
from tascmt.training.api import resume, train
from tascmt.training.resformer import (
    RESFORMER_DEFAULTS,
    ResFormerTrainer,
    poly_factor,
    resformer_train_config,
    trainer_for_model,
    with_defaults,
)
from tascmt.training.trainer import Trainer

QUICK = dict(size="tiny", batch_size=4, num_workers=0, progress=False, tensorboard=False, device="cpu")


def test_trainer_selection_and_defaults(tmp_path):
    assert trainer_for_model("resformer_mtl_parallel") is ResFormerTrainer
    assert trainer_for_model("tasc_swinmt") is Trainer
    cfg = resformer_train_config(tmp_path, tmp_path / "run", epochs=3)
    got = (cfg.model, cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.epochs)
    assert got == ("resformer_mtl", 1e-4, 3e-5, 8, 3)
    assert RESFORMER_DEFAULTS["epochs"] == 150
    assert poly_factor(0, 10) == 1.0 and poly_factor(5, 10) == pytest.approx(0.5**0.9)
    assert poly_factor(10, 10) == 0
    given = with_defaults({"model": "resformer_mtl", "lr": 1e-3})
    assert given["lr"] == 1e-3 and given["weight_decay"] == 3e-5 and given["batch_size"] == 8
    assert with_defaults({"model": "tasc_swinmt", "lr": 1e-3}) == {"model": "tasc_swinmt", "lr": 1e-3}


def test_train_resume_and_evaluate_isic(isic_task, tmp_path):
    cfg = resformer_train_config(
        isic_task, tmp_path / "run", epochs=2, max_steps=2, lr=1e-3, model_overrides={"img_size": 32}, **QUICK
    )
    first = train(cfg, trainer_cls=ResFormerTrainer)
    assert first.stop_reason == "max_steps" and len(first.history) == 1
    rec = first.history[0]
    for key in (
        "val_loss",
        "val_L_seg",
        "val_L_cls",
        "val_dice",
        "val_jaccard",
        "val_accuracy_macro",
        "val_sensitivity_melanoma",
        "val_specificity_seborrheic_keratosis",
        "train_L_cls",
    ):
        assert key in rec, key
    assert rec["val_loss"] == pytest.approx(rec["val_L_seg"] + 0.25 * rec["val_L_cls"])
    assert 0.0 <= rec["val_dice"] <= 1.0 and rec["w_cls"] == 0.25
    done = resume(tmp_path / "run", trainer_cls=ResFormerTrainer, max_steps=4)
    assert done.stop_reason == "epochs" and [h["epoch"] for h in done.history] == [1, 2]
    assert done.history[1]["lr"] == pytest.approx(1e-3 * 0.5**0.9)  # poly decay after one epoch of two
    meta = json.loads((done.best_checkpoint / "model.json").read_text(encoding="utf-8"))
    assert meta["extra"]["resformer"]["class_names"] == ["melanoma", "seborrheic_keratosis"]
    assert is_resformer_checkpoint(done.best_checkpoint)
    summary = evaluate_resformer(done.best_checkpoint, isic_task, tmp_path / "eval", split="test")
    assert summary["n"] == 2 and 0.0 <= summary["metrics"]["dice"] <= 1.0
    assert {"accuracy_macro", "sensitivity_macro", "specificity_macro", "jaccard"} <= set(summary["metrics"])
    for name in ("per_image.csv", "summary.json", "summary.md"):
        assert (tmp_path / "eval" / name).is_file()


def test_train_multiclass_retouch_style(retouch_task, tmp_path):
    cfg = resformer_train_config(
        retouch_task,
        tmp_path / "run",
        epochs=1,
        model="resformer_mtl_parallel",
        model_overrides={"img_size": 32, "in_chans": 1, "seg_classes": 4, "cls_classes": 3},
        **QUICK,
    )
    result = train(cfg, trainer_cls=ResFormerTrainer)
    rec = result.history[0]
    assert {"val_dice_class1", "val_dice_class3", "val_accuracy_class2"} <= set(rec)
    assert result.best_checkpoint is not None
