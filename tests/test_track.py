"""The tracker on hand-built scenes with known motion: ids, birth, death, crossing people."""

import numpy as np
import pytest

from poses import person
from posestream.stream.track.appearance import SIZE
from posestream.stream.track.matching import box_iou
from posestream.stream.track.tracker import BoxKalman, Track, Tracker, TrackerConfig

SCORES = np.ones(17, np.float32)


def _step(tracker, people, t, bbox_scores=None):
    keypoints = np.array(people, np.float32).reshape(-1, 17, 2)
    scores = np.ones(keypoints.shape[:2], np.float32)
    bbox_scores = np.full(len(keypoints), 0.9, np.float32) if bbox_scores is None else np.asarray(bbox_scores)
    tracker.predict(t)
    return tracker.update(keypoints, scores, bbox_scores, t)


def test_kalman_learns_constant_velocity():
    """A box moving 100 px/s to the right: after a few updates the prediction leads by v·dt."""
    kalman = BoxKalman(np.array([0, 0, 50, 100], np.float32))
    for i in range(1, 20):
        kalman.predict(0.1)
        kalman.correct(np.array([10 * i, 0, 10 * i + 50, 100], np.float32))
    predicted = kalman.predict(0.5)
    assert (predicted[0] + predicted[2]) / 2 == pytest.approx(25 + 190 + 50, abs=5)  # centre at t + 0.5 s


def test_two_people_crossing_keep_their_ids():
    """Two people walk towards each other at 300 px/s, pass (boxes overlapping), walk on."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1))
    ids_left, ids_right = [], []
    for i in range(40):
        t = i / 10
        a, b = person(100 + 30 * i, 300, 250), person(1300 - 30 * i, 310, 250)
        out = _step(tracker, [b, a] if i % 2 else [a, b], t)  # the detector's order changes every frame
        who = dict(zip(out.index.tolist(), out.track_ids.tolist()))
        ids_left.append(who[1 if i % 2 else 0])
        ids_right.append(who[0 if i % 2 else 1])
    assert set(ids_left) == {1} and set(ids_right) == {2}


def test_birth_after_min_hits_and_death_after_max_missing():
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3, max_missing=4, max_missing_seconds=0.0))
    p = person(300, 300, 200)
    reported = [len(_step(tracker, [], i / 10).track_ids) for i in range(5)]  # empty frames start the stream
    reported += [len(_step(tracker, [p], (5 + i) / 10).track_ids) for i in range(4)]
    assert reported == [0] * 5 + [0, 0, 1, 1]  # born on its third hit
    for i in range(4):  # four missing frames: still alive
        _step(tracker, [], (9 + i) / 10)
    assert len(tracker.tracks) == 1
    assert _step(tracker, [p], 1.3).track_ids.tolist() == [1]  # found again, same id
    for i in range(5):  # five missing: gone
        _step(tracker, [], (14 + i) / 10)
    assert tracker.tracks == []
    for i in range(3):
        out = _step(tracker, [p], (19 + i) / 10)
    assert out.track_ids.tolist() == [2]  # a new person


def test_weak_detections_do_not_start_tracks_but_continue_them():
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, birth_score=0.6))
    p = person(300, 300, 200)
    assert len(_step(tracker, [p], 0.0, [0.4]).track_ids) == 0
    assert _step(tracker, [p], 0.1, [0.9]).track_ids.tolist() == [1]
    assert _step(tracker, [p], 0.2, [0.4]).track_ids.tolist() == [1]


def test_first_frames_report_at_once_and_tentative_tracks_die_on_first_miss():
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3))
    p, q = person(200, 300, 200), person(900, 300, 200)
    assert _step(tracker, [p], 0.0).track_ids.tolist() == [1]  # stream start: reported at once
    for i in range(1, 5):
        _step(tracker, [p], i / 10)
    _step(tracker, [p, q], 0.5)  # q seen once, tentative
    _step(tracker, [p], 0.6)  # q missing: dropped
    assert len(tracker.tracks) == 1


def test_smoothing_calms_jitter_and_gaps_do_not_crash():
    rng = np.random.default_rng(0)
    smooth, raw = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1, smoothing=False))
    truth = person(400, 300, 300)
    err_smooth, err_raw = [], []
    for i in range(60):
        noisy = truth + rng.normal(0, 3, truth.shape).astype(np.float32)
        t = i / 30
        err_smooth.append(np.abs(_step(smooth, [noisy], t).keypoints[0] - truth).mean())
        err_raw.append(np.abs(_step(raw, [noisy], t).keypoints[0] - truth).mean())
        if i == 30:
            for gap in range(3):  # empty frames inside the stream
                _step(smooth, [], t + (gap + 1) / 300)
    assert np.mean(err_smooth[10:]) < 0.6 * np.mean(err_raw[10:])


def test_merge_keeps_tracked_boxes_and_adds_new_people():
    tracker = Tracker(TrackerConfig())
    tracked = np.array([[0, 0, 100, 200]], np.float32)
    rois = np.array([[50, 120, 180, 0.1]], np.float32)
    detected = np.array([[5, 5, 105, 205], [300, 0, 400, 200]], np.float32)
    boxes, scores, merged_rois = tracker.merge(detected, np.array([0.9, 0.8], np.float32), tracked,
                                               np.array([0.7], np.float32), rois)
    assert boxes.tolist() == [[0, 0, 100, 200], [300, 0, 400, 200]] and scores.tolist() == pytest.approx([0.7, 0.8])
    assert merged_rois[0].tolist() == pytest.approx(rois[0].tolist()) and np.isnan(merged_rois[1]).all()


def test_merge_gives_one_crop_per_person_where_iou_is_low():
    """A track's box is its keypoints' box ×1.25 (with margins the detector does not leave):
    IoU with the same person's detector box is about 0.35, under any IoU merge threshold."""
    tracker = Tracker(TrackerConfig())
    detector_box = np.array([[100, 100, 160, 260]], np.float32)  # 60 × 160
    track_box = np.array([[70, 70, 190, 290]], np.float32)  # 120 × 220, around it
    iou = (60 * 160) / (120 * 220)
    assert iou < 0.4
    boxes, _, _ = tracker.merge(detector_box, np.array([0.9], np.float32), track_box, np.array([0.8], np.float32))
    assert len(boxes) == 1
    # a second detector box overlapping the same track is a second person (pairs are one-to-one)
    neighbour = np.array([[100, 100, 160, 260], [140, 90, 200, 250]], np.float32)
    boxes, _, _ = tracker.merge(neighbour, np.array([0.9, 0.9], np.float32), track_box, np.array([0.8], np.float32))
    assert len(boxes) == 2
    # a much smaller person inside a tracked box (a child in front of an adult) is another person
    child = np.array([[100, 200, 130, 260]], np.float32)  # area 1800 vs 26400: ratio 0.07
    boxes, _, _ = tracker.merge(child, np.array([0.9], np.float32), track_box, np.array([0.8], np.float32))
    assert len(boxes) == 2


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        TrackerConfig(detect_interval=0)
    with pytest.raises(ValueError):
        TrackerConfig(verify_zoom=-1.0)


def _arms_spread(k: np.ndarray, height: float) -> np.ndarray:
    """Both arms swung out and up (a jumping jack): elbows and wrists far from the body."""
    k = k.copy()
    for shoulder, elbow, wrist, side in ((5, 7, 9, 1), (6, 8, 10, -1)):
        k[elbow] = k[shoulder] + [side * 0.16 * height, -0.08 * height]
        k[wrist] = k[shoulder] + [side * 0.30 * height, -0.22 * height]
    for hip, knee, ankle, side in ((11, 13, 15, 1), (12, 14, 16, -1)):  # legs apart
        k[knee] = k[hip] + [side * 0.08 * height, 0.24 * height]
        k[ankle] = k[hip] + [side * 0.16 * height, 0.48 * height]
    return k - [0, 0.08 * height]  # in the air


def test_a_person_missed_while_swinging_the_arms_keeps_the_id():
    """Three people exercising side by side at 10 fps; the middle one is missed for two frames
    and comes back with the arms spread: the box changed shape, the torso did not."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1))
    height = 300
    people = [person(x, 400, height) for x in (200, 480, 760)]
    for i in range(10):
        out = _step(tracker, people, i / 10)
    ids = out.track_ids.tolist()
    for i in range(10, 12):  # the middle person is missed
        _step(tracker, [people[0], people[2]], i / 10)
    back = [people[0], _arms_spread(people[1], height), people[2]]
    out = _step(tracker, back, 1.2)
    assert out.track_ids.tolist() == ids
    assert len(tracker.tracks) == 3


def test_the_gap_a_track_survives_is_in_seconds_too():
    """At 60 fps a person hidden for 0.5 s (30 frames, over max_missing) keeps the id; after
    more than max_missing_seconds and max_missing frames the track is gone."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, max_missing=10, max_missing_seconds=1.0))
    p = person(300, 300, 200)
    for i in range(30):
        first = _step(tracker, [p], i / 60).track_ids.tolist()
    for i in range(30, 60):  # hidden for 0.5 s
        _step(tracker, [], i / 60)
    assert _step(tracker, [p], 1.0).track_ids.tolist() == first
    for i in range(61, 61 + 70):  # hidden for 70 frames, 1.17 s
        _step(tracker, [], i / 60)
    assert tracker.tracks == []


def _back_after_a_pan(config: TrackerConfig, dx: float, scale: float = 1.0, looks: tuple = (None, None),
                      second_look: bool | None = None) -> tuple[list, list]:
    """A person 80 px tall walks right at 10 fps (5 px a frame), is missed for 3 frames while
    the camera pans, and is seen again ``dx`` pixels from where they were last seen (their box
    ``scale`` times as tall), for 5 frames. ``looks``: the appearance descriptor ((D,) float32,
    or None: none given) of the person before and after. ``second_look``: None, no second look;
    else one that finds a person before the miss and answers ``second_look`` after it.
    Returns the ids reported before and after (after: from the new track's third frame, when
    it is born)."""
    tracker = Tracker(config)
    answer = [True]
    verify = None if second_look is None else (lambda boxes: np.full(len(boxes), answer[0]))
    scores = np.ones((1, 17), np.float32)

    def step(people: list, t: float, look) -> list:
        tracker.predict(t)
        keypoints = np.array(people, np.float32).reshape(-1, 17, 2)
        descriptors = None if look is None else np.tile(look, (len(keypoints), 1))
        return tracker.update(keypoints, scores[:len(keypoints)], np.full(len(keypoints), 0.9), t, verify=verify,
                              appearances=descriptors).track_ids.tolist()

    before, after = [], []
    for i in range(10):
        before += step([person(300 + 5 * i, 300, 80)], i / 10, looks[0])
    answer[0] = bool(second_look)
    for i in range(10, 13):
        step([], i / 10, looks[0])
    for i in range(13, 18):
        after += step([person(345 + dx + 5 * (i - 13), 300, 80 * scale)], i / 10, looks[1])
    return before, after


def test_a_person_missed_while_the_camera_pans_comes_back_with_the_id():
    """Seen again 45 px (0.45 of their box's 100 px height) against their walk, too far for the
    Kalman-predicted box's IoU and for OKS at 80 px (its tolerance shrinks with the person):
    the track born there takes the lost track's id (reid_distance 1.0 box heights). Beyond it,
    or twice as tall, or with reid_distance 0, it is someone new."""
    config = TrackerConfig(smoothing=False)
    before, after = _back_after_a_pan(config, dx=-45)
    assert set(before) == {1} and after == [1, 1, 1]  # born again on the third frame, as any track
    assert _back_after_a_pan(TrackerConfig(smoothing=False, reid_distance=0.0), dx=-45)[1] == [2, 2, 2]
    assert _back_after_a_pan(config, dx=-130)[1] == [2, 2, 2]  # 1.3 box heights away
    assert _back_after_a_pan(config, dx=-45, scale=2.0)[1] == [2, 2, 2]
    assert _back_after_a_pan(config, dx=-45, scale=1.4)[1] == [1, 1, 1]  # within reid_scale 1.5
    with pytest.raises(ValueError):
        TrackerConfig(reid_scale=0.9)
    with pytest.raises(ValueError):
        TrackerConfig(reid_distance=-1.0)


def test_a_person_found_again_needs_no_second_look():
    """The second look (verify_zoom) guards the births of new people only: a second look that
    now refuses everything does not stop a lost person taking their id back, and does stop
    someone new (1.3 box heights away)."""
    config = TrackerConfig(smoothing=False)
    assert _back_after_a_pan(config, dx=-45, second_look=False)[1] == [1, 1, 1]
    assert _back_after_a_pan(config, dx=-130, second_look=False)[1] == []
    assert _back_after_a_pan(config, dx=-130, second_look=True)[1] == [2, 2, 2]


def test_a_lost_person_is_found_again_only_by_someone_who_looks_alike():
    """Descriptors made by hand (stream/track/appearance.py's layout: trunk bins, then thigh
    bins): another shirt over the same trousers shares half the mass, Bhattacharyya distance
    sqrt(1 - 0.5) = 0.71, over reid_appearance 0.6."""
    red, blue = np.zeros(SIZE, np.float32), np.zeros(SIZE, np.float32)
    red[0] = red[SIZE // 2] = 0.5
    blue[1] = blue[SIZE // 2] = 0.5
    config = TrackerConfig(smoothing=False)
    assert _back_after_a_pan(config, -45, looks=(red, red))[1] == [1, 1, 1]
    assert _back_after_a_pan(config, -45, looks=(red, blue))[1] == [2, 2, 2]  # someone else, where they were
    for gate in (0.75, 1.0):  # relaxed past 0.71; off
        relaxed = TrackerConfig(smoothing=False, reid_appearance=gate)
        assert _back_after_a_pan(relaxed, -45, looks=(red, blue))[1] == [1, 1, 1]
    nan = np.full(SIZE, np.nan, np.float32)
    assert _back_after_a_pan(config, -45, looks=(red, nan))[1] == [2, 2, 2]  # the new one's trunk not seen
    assert _back_after_a_pan(config, -45, looks=(red, None))[1] == [2, 2, 2]  # one side has a descriptor: both must
    with pytest.raises(ValueError):
        TrackerConfig(reid_appearance=1.5)


def test_two_people_lost_together_are_found_again_by_the_nearest():
    """Two people 80 px tall, 60 px apart, both missed for 3 frames and seen again each 20 px
    outwards from their last place: each new track is within reid_distance (about 100 px) of
    both lost tracks, and each takes back their own id, the nearer (Hungarian on the distance),
    whatever the order of the poses."""
    tracker = Tracker(TrackerConfig(smoothing=False))
    for i in range(10):
        out = _step(tracker, [person(300, 300, 80), person(360, 300, 80)], i / 10)
    first = dict(zip(out.index.tolist(), out.track_ids.tolist()))
    for i in range(10, 13):
        _step(tracker, [], i / 10)
    for i in range(13, 16):
        out = _step(tracker, [person(380, 300, 80), person(280, 300, 80)], i / 10)
    again = dict(zip(out.index.tolist(), out.track_ids.tolist()))
    assert again == {0: first[1], 1: first[0]}


def test_someone_seen_beside_a_newcomer_is_not_their_return():
    """A newcomer appears 70 px from a tracked person (within reid_distance) and both are seen
    for two frames; the person is missed for one frame just as the newcomer is due to be born.
    The newcomer is someone new (the person was seen while the newcomer lived), and the person
    keeps their id."""
    tracker = Tracker(TrackerConfig(smoothing=False))
    a, b = person(300, 300, 80), person(370, 300, 80)
    for i in range(10):
        _step(tracker, [a], i / 10)
    for i in range(10, 12):
        _step(tracker, [a, b], i / 10)
    out = _step(tracker, [b], 1.2)  # a missed; b due to be born
    assert out.track_ids.tolist() == [2]
    out = _step(tracker, [a, b], 1.3)
    assert dict(zip(out.index.tolist(), out.track_ids.tolist())) == {0: 1, 1: 2}


def _detector_box(keypoints: np.ndarray, left: float = 0.0) -> np.ndarray:
    """(1, 4) a detector's box of a person (their keypoints' box, no margin) cut at x = ``left``."""
    box = np.concatenate([keypoints.min(axis=0), keypoints.max(axis=0)])
    box[0] = max(box[0], left)
    return box[None].astype(np.float32)


def _step_detected(tracker, people, t, detected, image_size=(640, 480)):
    keypoints = np.array(people, np.float32).reshape(-1, 17, 2)
    tracker.predict(t)
    return tracker.update(keypoints, np.ones(keypoints.shape[:2], np.float32), np.full(len(keypoints), 0.9, np.float32),
                          t, detected=detected, image_size=image_size)


def test_a_person_half_out_of_the_frame_keeps_the_id_while_the_detector_boxes_them():
    """A person walks to the left edge at 10 fps until half of them is outside; the pose model
    drops them there for 2.5 s (over max_missing and max_missing_seconds) while the detector still
    boxes the half in view; they come back in: the same id. Without the detector's boxes, or
    after hold_seconds, a new id."""
    config = TrackerConfig(smoothing=False, min_hits=1, max_missing=10, max_missing_seconds=1.0, hold_seconds=3.0)

    def walk_out_and_back(gap: float, with_boxes: bool) -> tuple[list, list]:
        tracker = Tracker(config)
        first = []
        for i in range(10):  # walking left at 100 px/s, hip centre from x 100 to 10
            p = person(100 - 10 * i, 240, 300)
            first = _step_detected(tracker, [p], i / 10, _detector_box(p)).track_ids.tolist()
        half_out = person(0, 240, 300)  # hip centre on the edge: half the body outside
        steps = int(round(gap * 10))
        for i in range(steps):
            _step_detected(tracker, [], 1.0 + i / 10, _detector_box(half_out) if with_boxes else np.zeros((0, 4)))
        back = person(40, 240, 300)
        return first, _step_detected(tracker, [back], 1.0 + steps / 10, _detector_box(back)).track_ids.tolist()

    first, again = walk_out_and_back(2.5, with_boxes=True)
    assert again == first == [1]
    first, again = walk_out_and_back(2.5, with_boxes=False)
    assert again == [2]  # lost for over max_missing_seconds without the detector: a new person
    first, again = walk_out_and_back(4.5, with_boxes=True)
    assert again == [2]  # held for hold_seconds (3 s), then max_missing_seconds (1 s): gone at 4 s


def test_the_detector_holds_only_the_track_it_covers():
    """Two people; one's pose is lost while the detector boxes only the other one's place:
    the uncovered track dies after max_missing_seconds, the covered one lives on."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, max_missing=0, max_missing_seconds=0.5))
    a, b = person(150, 240, 200), person(450, 240, 200)
    for i in range(5):
        ids = _step_detected(tracker, [a, b], i / 10, np.concatenate([_detector_box(a), _detector_box(b)]))
    assert ids.track_ids.tolist() == [1, 2]
    for i in range(5, 15):  # both poses lost; the detector finds only a
        _step_detected(tracker, [], i / 10, _detector_box(a))
    assert [tr.track_id for tr in tracker.tracks] == [1]


def test_a_born_track_lost_for_a_frame_is_matched_before_a_tentative_one():
    """A born person's pose is missed for one frame, and a stray crop of them starts a
    tentative track right beside; when their pose comes back, fitting both, it goes to the
    born track (matched first), not to the tentative one that fits it a little better."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3))
    p = person(300, 240, 300)
    for i in range(5):
        first = _step(tracker, [p], i / 10).track_ids.tolist()
    _step(tracker, [], 0.5)  # missed for a frame
    stray = person(322, 240, 290)
    tracker.tracks.append(Track(0, np.array([270, 60, 370, 420], np.float32), stray, SCORES, 0.9, 0.5,
                                tracker.config))  # the tentative track a stray crop started
    back = person(316, 240, 295)
    assert _step(tracker, [back], 0.6).track_ids.tolist() == first == [1]
    assert [tr.confirmed for tr in tracker.tracks].count(True) == 1


def test_a_track_the_second_look_refuses_is_not_born_until_a_look_finds_a_person():
    """The tracker asks ``verify`` (the detector's second look) before each birth: a refused
    track stays tentative and unreported, is not asked again before ``verify_seconds``, and is
    born (with the next id) at the first look that finds a person; born tracks are never asked."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3, verify_zoom=2.5, verify_seconds=0.5))
    person_a, chair = person(200, 300, 200), person(500, 300, 200)
    answers = {"chair": False}
    looks = []

    def verify(boxes):
        looks.append((round(t, 1), len(boxes)))
        return np.array([answers["chair"] if (b[0] + b[2]) / 2 > 350 else True for b in boxes])

    ids = []
    for i in range(20):
        t = i / 10
        keypoints = np.array([person_a, chair], np.float32)
        tracker.predict(t)
        out = tracker.update(keypoints, np.ones((2, 17), np.float32), np.full(2, 0.9, np.float32), t, verify=verify)
        ids.append(out.track_ids.tolist())
        if i == 11:
            answers["chair"] = True  # from t = 1.2 s the look finds a person there
    # the first frames of a stream report at once, after a look: the chair is refused at t = 0,
    # asked again at 0.5 and 1.0 s (refused), and at 1.5 s (found): born as id 2
    assert looks == [(0.0, 2), (0.5, 1), (1.0, 1), (1.5, 1)]
    assert ids[:15] == [[1]] * 15 and ids[15:] == [[1, 2]] * 5
    # verify_seconds 0: looked at on every frame, and still never born while refused
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3, verify_seconds=0.0))
    for i in range(6):
        tracker.predict(i / 10)
        out = tracker.update(np.array([chair], np.float32), np.ones((1, 17), np.float32), np.full(1, 0.9, np.float32),
                             i / 10, verify=lambda boxes: np.zeros(len(boxes), bool))
        assert out.track_ids.tolist() == []
    # a clock gone back (a restarted capture) looks again at once rather than waiting for it
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, verify_seconds=0.5))
    answers["chair"] = False
    for t in (5.0, 1.0):
        tracker.predict(t)
        out = tracker.update(np.array([chair], np.float32), np.ones((1, 17), np.float32), np.full(1, 0.9, np.float32),
                             t, verify=verify)
    assert looks[-2:] == [(5.0, 1), (1.0, 1)]
    # without the second look (verify_zoom 0) the same scene reports both at once
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=3, verify_zoom=0.0))
    tracker.predict(0.0)
    out = tracker.update(np.array([person_a, chair], np.float32), np.ones((2, 17), np.float32),
                         np.full(2, 0.9, np.float32), 0.0, verify=lambda boxes: np.zeros(len(boxes), bool))
    assert out.track_ids.tolist() == [1, 2]


# -- edge poses: people cut by the frame's edge whom the pose flag drops ------------------------


def _step_edge(tracker, people, weak, t, detected, image_size=(640, 480), scores=None):
    """One frame whose poses came from crops that are the detector's boxes of them cut to the
    frame; ``weak``: (N,) bool, the poses the pose model flagged as no person."""
    keypoints = np.array(people, np.float32).reshape(-1, 17, 2)
    crops = np.concatenate([_detector_box(p) for p in keypoints]) if len(keypoints) else np.zeros((0, 4), np.float32)
    scores = np.ones(keypoints.shape[:2], np.float32) if scores is None else np.asarray(scores, np.float32)
    tracker.predict(t)
    return tracker.update(keypoints, scores, np.full(len(keypoints), 0.9, np.float32), t, crops, detected=detected,
                          image_size=image_size, weak=np.asarray(weak, bool))


def _reported_half_out(config: TrackerConfig, half_out: float, detected=None, scores=None, frames: int = 20) -> list:
    """A person is born 30 px right of ``half_out`` (5 frames at 10 fps), then stands with their
    hip centre at ``half_out`` for ``frames`` frames with poses the pose model flags as no
    person, boxed by the detector (or by ``detected``): the ids reported in those frames."""
    tracker = Tracker(config)
    inside = person(half_out + 30, 240, 300)
    for i in range(5):
        _step_edge(tracker, [inside], [False], i / 10, _detector_box(inside))
    out = []
    for i in range(frames):
        p = person(half_out, 240, 300)
        reported = _step_edge(tracker, [p], [True], 0.5 + i / 10, _detector_box(p) if detected is None else detected,
                              scores=None if scores is None else scores[None])
        if len(reported.track_ids):  # the flagged pose itself is what is reported
            np.testing.assert_allclose(tracker.tracks[0].keypoints, p)
        out.append(reported.track_ids.tolist())
    return out


EDGE = TrackerConfig(smoothing=False, min_hits=1, max_missing_seconds=1.0, hold_seconds=3.0)


def test_a_person_half_out_whom_the_pose_flag_drops_stays_reported_while_their_trunk_is_seen():
    """Hip centre at x 10 (height 300 px; born at x 40): the right shoulder and hip are outside
    the picture, the left ones inside; the crop (the detector's box cut at x 0) touches the edge.
    The person stays reported under their id for 2 s (over max_missing_seconds); not on frames
    without a detector box on them (none, or one elsewhere), nor with ``edge_poses`` off."""
    assert _reported_half_out(EDGE, 10.0) == [[1]] * 20
    assert _reported_half_out(EDGE, 10.0, detected=np.zeros((0, 4), np.float32)) == [[]] * 20
    elsewhere = _detector_box(person(400, 240, 300))
    assert _reported_half_out(EDGE, 10.0, detected=elsewhere) == [[]] * 20
    assert _reported_half_out(TrackerConfig(smoothing=False, min_hits=1, edge_poses=False), 10.0) == [[]] * 20


def test_edge_poses_need_the_edge_and_the_trunk_inside():
    """A flagged pose away from the edge (hip centre at x 300) is no person; one at the edge
    whose shoulders, or whose hips, score under keypoint_threshold is not read either (its limbs
    in view, the detector boxing it)."""
    assert _reported_half_out(EDGE, 300.0) == [[]] * 20
    for joints in ((5, 6), (11, 12)):
        scores = np.ones(17, np.float32)
        scores[list(joints)] = 0.1
        assert _reported_half_out(EDGE, 10.0, scores=scores) == [[]] * 20


def test_edge_poses_continue_a_track_for_hold_seconds_after_its_last_person_pose():
    """A track seen only by edge poses is no ghost for ever: with hold_seconds 1 s it is
    reported for 1 s after its last pose taken for a person (t 0.4 s), then dropped."""
    config = TrackerConfig(smoothing=False, min_hits=1, max_missing=0, max_missing_seconds=0.5, hold_seconds=1.0)
    reported = _reported_half_out(config, 10.0, frames=30)  # t 0.5 .. 3.4 s
    assert reported == [[1]] * 10 + [[]] * 20  # up to t 1.4 s


def test_edge_poses_never_start_a_track():
    """A person half out from the first frame on, flagged every frame: no track is ever born,
    nor kept tentative."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1))
    p = person(10, 240, 300)
    for i in range(10):
        assert _step_edge(tracker, [p], [True], i / 10, _detector_box(p)).track_ids.tolist() == []
    assert tracker.tracks == []


def test_a_person_s_pose_is_matched_before_an_edge_pose_of_them():
    """A born person at the edge, posed twice in one frame: by a crop the pose model takes for
    a person and by one it flags (a second crop of them). The track takes the person's pose
    although the flagged one fits its last keypoints better."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1))
    p = person(30, 240, 300)
    for i in range(3):
        _step_edge(tracker, [p], [False], i / 10, _detector_box(p))
    flagged, people = person(30, 240, 300), person(36, 242, 296)
    out = _step_edge(tracker, [flagged, people], [True, False], 0.3, _detector_box(p))
    assert out.index.tolist() == [1] and out.track_ids.tolist() == [1]
    np.testing.assert_allclose(tracker.tracks[0].keypoints, people)


def test_a_flagged_second_crop_of_one_person_is_not_taken_for_their_neighbour():
    """Two born people side by side at the left edge; the right one is hidden this frame and
    the left one is posed twice (once flagged, a second crop of them, shifted towards the
    neighbour). The flagged pose duplicates a person's pose (OKS-NMS): it continues no one,
    and the neighbour is not reported with the left one's skeleton."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1))
    left, right = person(20, 240, 300), person(75, 240, 300)
    both = np.concatenate([_detector_box(left), _detector_box(right)])
    for i in range(3):
        assert _step_edge(tracker, [left, right], [False, False], i / 10, both).track_ids.tolist() == [1, 2]
    second = person(28, 240, 300)
    out = _step_edge(tracker, [left, second], [False, True], 0.3, both)
    assert out.track_ids.tolist() == [1]


def test_after_an_edge_pose_the_track_s_crop_is_the_detector_s_box():
    """An edge pose's keypoints make a poor crop: the next frame runs the detector whatever
    detect_interval says, its crops hold no box of that track, and a detection scoring under
    birth_score that covers it (even by IoU under iou_threshold: a wider box) is kept as its
    crop; a weak detection elsewhere is not."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, birth_score=0.6, detect_interval=5))
    inside, half_out = person(40, 240, 300), person(10, 240, 300)
    for i in range(3):
        _step_edge(tracker, [inside], [False], i / 10, _detector_box(inside))
    assert not tracker.is_detection_frame()  # frame 4 of every 5
    assert _step_edge(tracker, [half_out], [True], 0.3, _detector_box(half_out)).track_ids.tolist() == [1]
    assert tracker.is_detection_frame() and tracker.needs_detection()
    boxes, scores, rois = tracker.predict(0.4)
    assert len(boxes) == 0
    wide = np.array([[0, 40, 150, 440]], np.float32)  # holds the track's box (x 0-58, y 62-426): IoU 0.35
    assert box_iou(wide, np.clip(tracker.tracks[0].kalman.box[None], 0, None))[0, 0] < tracker.config.iou_threshold
    detected = np.concatenate([wide, _detector_box(person(500, 240, 300))])
    crops, _, _ = tracker.merge(detected, np.array([0.4, 0.4], np.float32), boxes, scores, rois, (640, 480))
    np.testing.assert_allclose(crops, wide)


def test_an_edge_track_past_hold_seconds_no_longer_asks_for_the_detector():
    """Once edge poses may no longer continue a track (hold_seconds after its last pose taken for
    a person), it stops forcing the detector and a weak detection on it is no longer its crop."""
    tracker = Tracker(TrackerConfig(smoothing=False, min_hits=1, detect_interval=5, hold_seconds=0.5,
                                    max_missing_seconds=5.0))
    inside, half_out = person(40, 240, 300), person(10, 240, 300)
    for i in range(3):  # last pose taken for a person at t 0.2 s
        _step_edge(tracker, [inside], [False], i / 10, _detector_box(inside))
    assert _step_edge(tracker, [half_out], [True], 0.3, _detector_box(half_out)).track_ids.tolist() == [1]
    boxes, scores, rois = tracker.predict(0.7)  # 0.5 s after t 0.2: edge poses still allowed
    assert tracker.needs_detection()
    crops, _, _ = tracker.merge(_detector_box(half_out), np.array([0.4], np.float32), boxes, scores, rois, (640, 480))
    assert len(crops) == 1
    boxes, scores, rois = tracker.predict(0.8)
    assert not tracker.needs_detection() and len(tracker.tracks) == 1
    crops, _, _ = tracker.merge(_detector_box(half_out), np.array([0.4], np.float32), boxes, scores, rois, (640, 480))
    assert len(crops) == 0
