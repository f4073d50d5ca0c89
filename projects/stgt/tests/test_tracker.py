"""Kalman filter, Hungarian assignment, track life cycle and the cascade's stages."""

import numpy as np
import pytest
import torch

from projects.stgt.kalman import KalmanBox, xyah_to_xywh, xywh_to_xyah
from projects.stgt.tracker import METHODS, Tracker, TrackerConfig, hungarian


def test_kalman_predicts_a_constant_velocity_track():
    box = np.array([100.0, 50.0, 40.0, 100.0])
    velocity = np.array([3.0, -1.0, 0.0, 0.0])
    kf = KalmanBox(box)
    for _ in range(30):
        kf.predict()
        box = box + velocity
        kf.update(box)
    predicted = kf.predict()
    np.testing.assert_allclose(predicted, box + velocity, atol=0.05)
    np.testing.assert_allclose(kf.x[4:6], velocity[:2], atol=0.02)


def test_kalman_predict_and_update_follow_the_equations():
    kf = KalmanBox(np.array([10.0, 20.0, 30.0, 60.0]))
    x0, p0 = kf.x.copy(), kf.P.copy()
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    kf.predict()
    h = x0[3]
    q = np.diag(np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]))
    np.testing.assert_allclose(kf.x, f @ x0)
    np.testing.assert_allclose(kf.P, f @ p0 @ f.T + q)
    x1, p1 = kf.x.copy(), kf.P.copy()
    z = xywh_to_xyah(np.array([12.0, 21.0, 30.0, 62.0]))
    kf.update(np.array([12.0, 21.0, 30.0, 62.0]))
    hm = np.eye(4, 8)
    r = np.diag(np.square([x1[3] / 20, x1[3] / 20, 1e-1, x1[3] / 20]))
    k = p1 @ hm.T @ np.linalg.inv(hm @ p1 @ hm.T + r)
    np.testing.assert_allclose(kf.x, x1 + k @ (z - hm @ x1))
    np.testing.assert_allclose(kf.P, (np.eye(8) - k @ hm) @ p1, atol=1e-9)
    np.testing.assert_allclose(xyah_to_xywh(xywh_to_xyah(np.array([1.0, 2, 3, 4]))), [1, 2, 3, 4])


def test_hungarian_never_gives_one_detection_to_two_tracks():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(0, 8, 2)
        score = rng.random((n, m)) * (rng.random((n, m)) > 0.3)
        pairs, rest_r, rest_c = hungarian(score, 0.2)
        rows, cols = [r for r, _ in pairs], [c for _, c in pairs]
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert all(score[r, c] >= 0.2 for r, c in pairs)
        assert sorted(rows + rest_r) == list(range(n)) and sorted(cols + rest_c) == list(range(m))


def _walk(frames, gaps=(), x0=100.0):
    """One person walking right 4 px a frame; no detection in the frames of ``gaps``."""
    return {f: (np.array([[x0 + 4 * f, 100, 40, 100, 0.9]]) if f not in gaps else np.zeros((0, 5)))
            for f in frames}


@pytest.mark.parametrize("method", ["sort", "byte"])
def test_birth_tentative_then_tracked_and_death_after_max_age(method):
    tracker = Tracker(method, TrackerConfig(max_age=5))
    det = _walk(range(1, 30), gaps=range(10, 30))
    tracker.step(1, np.zeros((0, 5)))  # frame 1 empty: a later birth is tentative
    assert tracker.step(2, det[2]) == [] and tracker.tracks[0].state == "tentative"
    out = tracker.step(3, det[3])
    assert [tid for tid, _, _ in out] == [1] and tracker.tracks[0].state == "tracked"
    for f in range(4, 10):
        assert [tid for tid, _, _ in tracker.step(f, det[f])] == [1]
    for f in range(10, 15):  # lost, still remembered for max_age frames
        assert tracker.step(f, det[f]) == [] and tracker.tracks[0].state == "lost"
    tracker.step(15, det[15])
    assert tracker.tracks == []  # 6 frames without a match > max_age = 5


def test_byte_recovers_low_score_detection_that_sort_drops():
    frames = {f: np.array([[100 + 4 * f, 100, 40, 100, 0.9 if f < 6 else 0.3]]) for f in range(1, 10)}
    for method, expected in (("sort", []), ("byte", [1])):
        tracker = Tracker(method)
        for f in range(1, 9):
            out = tracker.step(f, frames[f])
        assert [tid for tid, _, _ in out] == expected, method


class FixedAssignment(torch.nn.Module):
    """A stand-in for STGT whose probabilities are set by the test: (M, N + 1) rows, the last column the source."""

    window = 5

    def __init__(self, det_prob: np.ndarray | None):
        super().__init__()
        self.det_prob = None if det_prob is None else torch.tensor(det_prob, dtype=torch.float32)

    def assignment(self, tracks, track_mask, dets, det_mask):
        n, m = tracks.shape[1], dets.shape[1]
        if self.det_prob is None:  # every detection is a new object
            return torch.cat([torch.zeros(1, m, n), torch.ones(1, m, 1)], -1), torch.ones(1, n)
        assert (m, n + 1) == tuple(self.det_prob.shape)
        return self.det_prob[None], torch.zeros(1, n)


class Nearest(FixedAssignment):
    """Gives each detection to the tracklet whose newest box centre is nearest (within 0.05 of the image)."""

    def __init__(self):
        super().__init__(None)

    def assignment(self, tracks, track_mask, dets, det_mask):
        n, m = tracks.shape[1], dets.shape[1]
        dist = torch.cdist(dets[0, :, :2], tracks[0, :, -1, :2])
        prob = torch.zeros(1, m, n + 1)
        best = dist.argmin(1)
        for j in range(m):
            prob[0, j, best[j] if dist[j, best[j]] < 0.05 else n] = 1.0
        return prob, torch.zeros(1, n)


def _two_tracks(model, method="stgt_nocascade"):
    """Two tracked tracks after frames 1-2 (matched by a model giving detection i to track i), then ``model``."""
    tracker = Tracker(method, model=FixedAssignment(np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])))
    for f in (1, 2):
        tracker.step(f, np.array([[100 + f, 100, 40, 100, 0.9], [300 + f, 100, 40, 100, 0.9]]))
    assert [t.state for t in tracker.tracks] == ["tracked", "tracked"]
    tracker.model = model
    return tracker


def test_births_and_deaths_through_the_virtual_column():
    # detection 0 → track 1, detection 1 → the source (a new object), track 2 gets nothing (the sink)
    model = FixedAssignment(np.array([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]]))
    tracker = _two_tracks(model)
    out = tracker.step(3, np.array([[103, 100, 40, 100, 0.9], [500, 300, 40, 100, 0.9]]))
    assert [tid for tid, _, _ in out] == [1]
    states = {t.track_id: t.state for t in tracker.tracks}
    assert states == {1: "tracked", 2: "lost", 3: "tentative"}  # track 2 unmatched, a birth from detection 1


def test_model_assignment_is_one_to_one_even_when_rows_agree():
    # both detections prefer track 1: one of them gets it, the other its second choice or nothing
    model = FixedAssignment(np.array([[0.8, 0.15, 0.05], [0.7, 0.25, 0.05]]))
    tracker = _two_tracks(model)
    matches, rest = tracker._associate_stgt(np.array([[103, 100, 40, 100, 0.9], [500, 100, 40, 100, 0.9]]))
    assert len({t.track_id for t, _ in matches}) == len(matches) == 1  # 0.25 < min_prob: no second pair
    assert rest == [1]


def test_cascade_stages():
    cfg = TrackerConfig(motion_frames=3, max_age=40)
    tracker = Tracker("stgt", cfg, model=Nearest())
    for f in range(1, 6):  # 5 unbroken frames: Match-with-Motion takes over, even a low-score detection
        tracker.step(f, np.array([[100 + 4 * f, 100, 40, 100, 0.9]]))
    never = FixedAssignment(None)  # from here on the transformer matches nothing
    tracker.model = never
    out = tracker.step(6, np.array([[124, 100, 40, 100, 0.2]]))
    assert [tid for tid, _, _ in out] == [1] and tracker.tracks[0].streak == 6
    for f in range(7, 15):  # occluded for longer than the window (5)
        tracker.step(f, np.zeros((0, 5)))
    assert tracker.tracks[0].state == "lost"
    # it reappears 30 px to the right: top-centre distance 0.3 h, recovered by the long-term stage
    out = tracker.step(15, np.array([[154, 100, 40, 100, 0.9]]))
    assert [tid for tid, _, _ in out] == [1]
    ablated = Tracker("stgt_nolongterm", cfg, model=never)
    ablated.tracks, ablated.next_id = tracker.tracks, tracker.next_id
    for f in range(16, 24):
        ablated.step(f, np.zeros((0, 5)))
    ablated.step(24, np.array([[160, 100, 40, 100, 0.9]]))
    assert {t.track_id: t.state for t in ablated.tracks} == {1: "lost", 2: "tentative"}


def test_duplicates_of_matched_boxes_do_not_start_tracks():
    cfg = TrackerConfig(motion_frames=2)
    tracker = Tracker("stgt", cfg, model=Nearest())
    for f in range(1, 4):
        tracker.step(f, np.array([[100 + f, 100, 40, 100, 0.9]]))
    tracker.step(4, np.array([[104, 100, 40, 100, 0.9], [110, 110, 20, 50, 0.95]]))  # a box inside the person
    assert [t.track_id for t in tracker.tracks] == [1]


def test_unknown_method_missing_model_and_bad_embeddings_are_clear():
    with pytest.raises(ValueError, match="choose one of"):
        Tracker("deepsort")
    with pytest.raises(ValueError, match="needs a trained STGT"):
        Tracker("stgt")
    tracker = Tracker("byte")
    with pytest.raises(ValueError, match="2 embeddings for 1 detections"):
        tracker.step(1, np.array([[0, 0, 10, 20, 0.9]]), np.zeros((2, 4)))
    tracker = Tracker("byte")
    tracker.step(1, np.array([[0, 0, 10, 20, 0.9]]), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="embeddings missing, but earlier frames had them"):
        tracker.step(2, np.array([[0, 0, 10, 20, 0.9]]))
    assert "stgt_nocascade" in METHODS


def test_long_term_stage_prefers_the_matching_embedding():
    cfg = TrackerConfig(motion_frames=100, max_age=40)
    tracker = Tracker("stgt", cfg, model=Nearest())
    me, other = np.eye(4)[0], np.eye(4)[1]
    for f in range(1, 4):
        tracker.step(f, np.array([[100.0, 100, 40, 100, 0.9]]), me[None])
    tracker.model = FixedAssignment(None)
    for f in range(4, 12):  # occluded past the window
        tracker.step(f, np.zeros((0, 5)), np.zeros((0, 4)))
    # two candidates: the nearer one looks like someone else, the farther one (D_top 0.4) like the track
    out = tracker.step(12, np.array([[110.0, 100, 40, 100, 0.9], [140.0, 100, 40, 100, 0.9]]),
                       np.stack([other, me]))
    assert [(tid, box[0]) for tid, box, _ in out] == [(1, pytest.approx(140.0, abs=3))]
