import hashlib

import numpy as np

from avcmr.data.synthetic import SyntheticSpec, class_name, plan_clips, write_clips


def test_plan_is_seeded_balanced_and_within_duration_bounds():
    spec = SyntheticSpec(n_classes=4, n_clips=40, mislabeled_fraction=0.0, seed=5)
    plan = plan_clips(spec)
    assert plan.equals(plan_clips(spec))
    assert not plan.equals(plan_clips(SyntheticSpec(n_classes=4, n_clips=40, seed=6)))
    assert plan["label"].value_counts().tolist() == [10] * 4
    assert plan["duration_s"].between(2.0, 10.0).all()
    assert (plan["label"] == plan["true_label"]).all()


def test_mislabeled_clips_name_another_class():
    plan = plan_clips(SyntheticSpec(n_classes=5, n_clips=400, mislabeled_fraction=0.2, seed=0))
    wrong = plan["mislabeled"]
    assert 0.12 < wrong.mean() < 0.28
    assert (plan.loc[wrong, "label"] != plan.loc[wrong, "true_label"]).all()
    assert set(plan["label"]) == {class_name(c) for c in range(5)}


def test_same_config_gives_byte_identical_media(tmp_path):
    spec = SyntheticSpec(n_classes=2, n_clips=2, min_duration_s=2, max_duration_s=2.5, seed=2)
    plan = plan_clips(spec).head(1)
    first = write_clips(plan, spec, tmp_path / "a")["path"].iloc[0]
    second = write_clips(plan, spec, tmp_path / "b")["path"].iloc[0]

    def digest(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest()

    assert digest(first) == digest(second)


def test_classes_differ_in_sound_and_picture():
    from avcmr.data.synthetic import class_frames, class_sound

    rng = np.random.default_rng(0)
    sounds = [np.abs(np.fft.rfft(class_sound(c, 1.0, 16000, 1.0, 1.0, rng))) for c in range(4)]
    peaks = [int(np.argmax(s)) for s in sounds]
    assert len(set(peaks)) == 4
    frames = [class_frames(c, 4, 1, 5, 64, 48, 1.0, 1.0, rng)[0].reshape(-1, 3).mean(0) for c in range(4)]
    assert min(np.linalg.norm(frames[i] - frames[j]) for i in range(4) for j in range(i)) > 10
