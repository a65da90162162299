"""Lesson 07's exercise checks: right answers pass, wrong ones get a hint without the answer."""

import torch

from ssd_lesson.exercises import lesson07 as ex
from ssd_lesson.inference import detect_steps, nms


def keep_everything(boxes, scores, iou_threshold):
    return torch.sort(scores, descending=True).indices


def transitive(boxes, scores, iou_threshold):
    """A common mistake: a removed box still removes the boxes it overlaps."""
    from ssd_lesson.boxes import box_iou

    order = torch.sort(scores, descending=True).indices.tolist()
    removed, keep = set(), []
    for i in order:
        if i not in removed:
            keep.append(i)
        for j in order:
            if j != i and box_iou(boxes[i][None], boxes[j][None]).item() > iou_threshold:
                removed.add(j)
    return keep


def test_my_nms_accepts_a_correct_nms():
    assert ex.check_my_nms(nms)
    assert ex.check_my_nms(lambda b, s, t: nms(b, s, t).tolist())  # a list is fine too


def test_my_nms_rejects_wrong_ones_with_a_hint():
    for wrong, words in [
        (keep_everything, "boxes where NMS keeps"),
        (transitive, "removes nothing itself"),
        (lambda b, s, t: sorted(nms(b, s, t).tolist()), "not best score first"),
        (lambda b, s, t: 1 / 0, "ZeroDivisionError"),
    ]:
        check = ex.check_my_nms(wrong)
        assert not check and words in repr(check)


def test_why_many_candidates():
    assert ex.check_why_many_candidates("b") and ex.check_why_many_candidates(" B ")
    for wrong in ("a", "c", None, ""):
        check = ex.check_why_many_candidates(wrong)
        assert not check and "lesson 02" in repr(check)
    assert set(ex.WHY_MANY_CANDIDATES) == {"a", "b", "c"}


def test_extra_box_iou_on_a_hand_made_image():
    # Two anchors with the same class scores; their decoded boxes overlap by IoU 0.5625
    # (zero offsets: the anchors themselves). NMS at 0.45 keeps one, at 0.6 (the next slider
    # value above 0.5625) both.
    anchors = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.14, 0.0, 0.64, 1.0]])
    logits = torch.tensor([[0.0, 5.0], [0.0, 4.0]])
    offsets = torch.zeros(2, 4)
    assert len(detect_steps(anchors, logits, offsets, 0.5, 0.45).kept) == 1
    assert ex.extra_box_iou(anchors, logits, offsets) == 0.6
    assert ex.check_extra_box_iou(0.6, anchors, logits, offsets)
    check = ex.check_extra_box_iou(0.5, anchors, logits, offsets)
    assert not check and "0.6" not in repr(check)
    # One anchor only: nothing to suppress, so no value adds a box.
    assert ex.extra_box_iou(anchors[:1], logits[:1], offsets[:1]) is None
    assert ex.check_extra_box_iou(None, anchors[:1], logits[:1], offsets[:1])
