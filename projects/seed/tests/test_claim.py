"""The SEED claim end to end in its smoke configuration, through the shared claim command line, and its probes."""

import json
import math

import pytest
import torch

from projects.seed import claim
from projects.seed.module import MoCoV2, slim_teacher, teacher_network


def test_claim_smoke_through_the_shared_command_line(tmp_path, one_thread):
    record = claim.main(["--scale", "smoke", "--seeds", "0", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "seed.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["scale"] == "smoke"
    assert saved["budget"] == {"fraction": 1.0, "teacher_epochs": 1, "student_images": 64, "student_epochs": 1}
    assert set(saved["per_seed"]) == set(claim.ARMS)
    assert all(len(v) == 2 and all(0 <= x <= 100 and math.isfinite(x) for x in v) for v in saved["per_seed"].values())
    assert [(c["method"], c["baseline"]) for c in saved["comparisons"]] == [
        ("student_seed_knn", "student_moco_knn"), ("student_seed_fewshot", "student_moco_fewshot")]
    assert [(g["method"], g["baseline"]) for g in saved["gates"]] == [
        ("teacher_knn", "pixels_knn"), ("teacher_fewshot", "pixels_fewshot"),
        ("teacher_knn", "student_moco_knn"), ("teacher_fewshot", "student_moco_fewshot")]
    assert all(c["n"] == 2 and math.isfinite(c["margin"]) for c in saved["comparisons"] + saved["gates"])
    assert set(saved["references"]) == {f"{n}_{p}" for n in ("random_student", "pixels") for p in claim.PROBES}
    assert [r["method"] for r in saved["details"]["reported"]][:3] == [f"student_seed_soft_{p}" for p in claim.PROBES]
    assert record.verdict == saved["verdict"] in ("holds", "does not hold", "premise absent")
    details = saved["details"]["seeds"]["0"]
    assert details["teacher"]["params"] > 10 * details["student_moco"]["params"] > 0
    assert (details["student_seed"]["params"] == details["student_seed_soft"]["params"]
            == details["student_moco"]["params"] == details["random_student"]["params"])
    assert "| raw pixels (784) (reference, no learning) |" in saved["table_md"] and "Verdict:" in saved["table_md"]


def test_few_shot_nearest_class_mean_by_hand():
    # two classes on the unit circle; the test point is nearer (in angle) to class 1's mean
    train_x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    train_y = torch.tensor([0, 0, 1, 1])
    test_x, test_y = torch.tensor([[0.2, 1.0], [1.0, 0.3]]), torch.tensor([1, 0])
    assert claim.few_shot_top1(train_x, train_y, test_x, test_y, shots=2, draws=3) == 1.0
    assert claim.few_shot_top1(train_x, train_y, test_x, 1 - test_y, shots=2, draws=3) == 0.0
    # one shot per class: the answer depends on which image was drawn, and the draws follow the seed
    many_x = torch.randn(200, 5)
    many_y = torch.arange(200) % 4
    a = claim.few_shot_top1(many_x, many_y, many_x, many_y, shots=1, draws=2, seed=0)
    assert a == claim.few_shot_top1(many_x, many_y, many_x, many_y, shots=1, draws=2, seed=0)
    assert a != claim.few_shot_top1(many_x, many_y, many_x, many_y, shots=1, draws=2, seed=1)


def test_slim_teacher_keeps_the_query_encoder_and_head_only():
    torch.manual_seed(0)
    moco = MoCoV2(arch="conv4", width=4, dim=8, queue_size=16)
    full = {"hyper_parameters": dict(moco.hparams), "state_dict": moco.state_dict()}
    slim = slim_teacher(full)
    assert all(k.startswith(("encoder.", "head.")) for k in slim["state_dict"])
    assert any(k.startswith("key_encoder.") for k in full["state_dict"])
    teacher = teacher_network(slim).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        expected = moco.head(moco.eval().encoder(x))
        assert torch.allclose(teacher(x), expected, atol=1e-2)  # half-precision weights
    broken = {**slim, "state_dict": {k: v for k, v in slim["state_dict"].items() if not k.startswith("head.")}}
    with pytest.raises(Exception, match="missing"):
        teacher_network(broken)
