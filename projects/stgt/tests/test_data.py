"""Training samples, the detector simulator and the synthetic scenes."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from projects.stgt.data import MotDataModule, collate, match_detections, sequence_samples
from projects.stgt.mot import Sequence, load_sequence, write_sequence
from projects.stgt.simulate import DetectorSimulator, occlusion, synthetic_sequence
from shared.errors import CorruptDataError, DatasetNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"


def tiny_sequence() -> Sequence:
    """Two people (ids 1, 2) over 4 frames; person 2 missed in frame 3; a false positive in frame 4."""
    gt = [(f, 1, 10 + f, 10, 10, 20, 1, 1, 1) for f in range(1, 5)] + \
         [(f, 2, 100 + f, 10, 10, 20, 1, 1, 1) for f in range(1, 5)]
    det = [(f, 10 + f, 10, 10, 20, 0.9) for f in range(1, 5)] + \
          [(f, 100 + f, 10, 10, 20, 0.9) for f in (1, 2, 4)] + [(4, 300, 300, 10, 20, 0.8)]
    return Sequence("tiny", 25, 4, 640, 480, det=np.array(det, float), gt=np.array(gt, float))


def test_detections_inherit_ground_truth_ids():
    seq = tiny_sequence()
    ids = match_detections(seq)
    assert ids.tolist() == [1, 1, 1, 1, 2, 2, 2, -1]


def test_samples_targets_births_and_sinks():
    samples = sequence_samples(tiny_sequence(), window=2)
    by_frame = {i + 2: s for i, s in enumerate(samples)}
    s3 = by_frame[3]  # tracklets 1, 2 seen in frames 1-2; only person 1 detected
    assert s3["tracks"].shape == (2, 2, 4)
    assert s3["det_target"].tolist() == [0] and s3["sink_target"].tolist() == [0, 1]
    s4 = by_frame[4]  # both tracklets alive (2 was seen in frame 2); the false positive goes to the source
    assert s4["det_target"].tolist() == [0, 1, 2] and s4["sink_target"].tolist() == [0, 0]
    np.testing.assert_allclose(s4["tracks"][1, :, 0], [(102 + 5) / 640] * 2, rtol=1e-6)  # carried over frame 3


def test_collate_pads_and_moves_the_source_index():
    samples = sequence_samples(tiny_sequence(), window=2)
    one = {"tracks": np.zeros((1, 2, 4), np.float32), "dets": np.zeros((1, 4), np.float32),
           "det_target": np.array([1]), "sink_target": np.array([1.0], np.float32)}
    batch = collate([samples[-1], one])
    assert batch["tracks"].shape == (2, 2, 2, 4) and batch["dets"].shape == (2, 3, 4)
    assert batch["track_mask"].tolist() == [[True, True], [True, False]]
    assert batch["det_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["det_target"][1, 0] == 2  # "source of a 1-tracklet sample" is column N = 2 after padding


def test_collate_keeps_the_window_when_the_first_sample_has_no_tracklets():
    empty = {"tracks": np.zeros((0, 5, 4), np.float32), "dets": np.ones((2, 4), np.float32),
             "det_target": np.array([0, 0]), "sink_target": np.zeros(0, np.float32)}
    full = {"tracks": np.random.default_rng(0).random((3, 5, 4)).astype(np.float32),
            "dets": np.ones((1, 4), np.float32), "det_target": np.array([1]), "sink_target": np.zeros(3, np.float32)}
    batch = collate([empty, full])
    assert batch["tracks"].shape == (2, 3, 5, 4)
    assert batch["tracks"][1].numpy() == pytest.approx(full["tracks"])
    assert batch["det_target"][0].tolist() == [3, 3]  # both detections of the empty sample are new objects


def test_an_empty_frame_range_gives_no_samples():
    assert sequence_samples(tiny_sequence(), window=2, frames=range(5, 5)) == []


def test_occlusion_by_hand():
    boxes = np.array([[0, 0, 10, 20], [0, 0, 10, 30], [50, 0, 10, 10]], float)  # box 1 is nearer than box 0
    np.testing.assert_allclose(occlusion(boxes), [1.0, 0.0, 0.0])
    half = np.array([[0, 0, 10, 20], [5, 0, 10, 30]], float)
    np.testing.assert_allclose(occlusion(half), [0.5, 0.0])


def test_simulator_is_seeded_and_occlusion_lowers_scores():
    seq = synthetic_sequence(3, length=60)
    sim = DetectorSimulator()
    a, b, c = sim(seq, 0), sim(seq, 0), sim(seq, 1)
    np.testing.assert_array_equal(a.det, b.det)
    assert not np.array_equal(a.det, c.det)
    ids = match_detections(a)
    assert 0.0 < (ids < 0).mean() < 0.2  # some false positives, far fewer than true detections
    vis = {(int(f), int(i)): v for f, i, *_, v in a.gt}
    tp = np.flatnonzero(ids >= 0)
    v = np.array([vis[(int(a.det[k, 0]), ids[k])] for k in tp])
    s = a.det[tp, 5]
    assert s[v < 0.6].mean() < s[v > 0.95].mean() - 0.15


def test_simulated_embeddings_identify_people_and_leave_boxes_unchanged():
    seq = synthetic_sequence(3, length=40)
    plain, rich = DetectorSimulator()(seq, 0), DetectorSimulator(embedding_dim=16)(seq, 0)
    assert plain.det_feat is None and rich.det_feat.shape == (len(rich.det), 16)
    np.testing.assert_array_equal(plain.det, rich.det)  # embeddings come from a stream of their own
    other = DetectorSimulator(embedding_dim=16)(dataclasses.replace(seq, name="another scene"), 0)
    ids = match_detections(rich)
    first = {int(i): f for i, f in zip(ids, rich.det_feat, strict=True) if i >= 0}
    again = {int(i): f for i, f in zip(match_detections(other), other.det_feat, strict=True) if i >= 0}
    shared = sorted(set(first) & set(again))
    assert shared and max(float(first[i] @ again[i]) for i in shared) < 0.8  # same id, another sequence: a stranger
    np.testing.assert_allclose(np.linalg.norm(rich.det_feat, axis=1), 1.0)
    f, real = rich.det_feat, ids >= 0
    cos = f[real] @ f[real].T
    same = ids[real][:, None] == ids[real][None, :]
    assert cos[same].mean() > 0.6 > 0.2 > abs(cos[~same].mean())
    samples = sequence_samples(rich, window=3)
    assert samples[5]["tracks"].shape[-1] == 4 + 16 and samples[5]["dets"].shape[-1] == 4 + 16
    gap = tiny_sequence()
    gap.gt = gap.gt[gap.gt[:, 0] != 2]  # a frame without anybody
    out = DetectorSimulator(embedding_dim=4, fp_per_frame=0.0)(gap, 0)
    assert out.det_feat.shape == (len(out.det), 4) and not (out.det[:, 0] == 2).any()


def test_synthetic_scene_round_trips_through_the_mot_layout(tmp_path: Path):
    seq = DetectorSimulator()(synthetic_sequence(5, length=40), seed=5)
    again = load_sequence(write_sequence(tmp_path / seq.name, seq))
    assert again.length == 40 and (again.gt[:, 7] == 1).all() and again.gt[:, 8].max() <= 1
    assert len(again.det) == len(seq.det)


def test_datamodule_on_a_mot_split_folder():
    dm = MotDataModule(root=str(FIXTURES / "MOT17" / "train"), batch_size=4, val_fraction=0.2)
    dm.setup()
    assert len(dm.train_set) > len(dm.val_set) > 0
    one = MotDataModule(root=str(FIXTURES / "MOT17" / "train"), sequences=["*-04-*"], batch_size=4)
    one.setup()
    assert len(one.train_set) < len(dm.train_set)
    batch = next(iter(dm.train_dataloader()))
    assert batch["tracks"].shape[0] == 4 and batch["tracks"].shape[2] == 5


def test_datamodule_errors_name_the_folder(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        MotDataModule(root=str(tmp_path / "nope")).setup()
    with pytest.raises(DatasetNotFoundError, match="no sequence folders"):
        MotDataModule(root=str(tmp_path)).setup()
    with pytest.raises(DatasetNotFoundError, match="val_fraction=0.0;"):
        MotDataModule(root=str(FIXTURES / "MOT17" / "train"), val_fraction=0.0).setup()
    with pytest.raises(CorruptDataError, match="FRCNN/det/det.txt: 0 embedding columns .*init_args.appearance_dim=8"):
        MotDataModule(root=str(FIXTURES / "MOT17" / "train"), appearance_dim=8).setup()
    seq = tiny_sequence()
    seq.gt = None
    write_sequence(tmp_path / "test_split" / "S1", seq)
    with pytest.raises(DatasetNotFoundError, match="no gt/gt.txt"):
        MotDataModule(root=str(tmp_path / "test_split")).setup()
