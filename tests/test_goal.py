"""common.goal: the one target type: its loss, win test and probability agree, and its JSON form
reads the older shapes earlier files hold (records read it through Goal.from_json)."""
import pytest
import torch

from common.errors import UserError
from common.goal import Goal


def test_goal_loss_win_and_probability_agree():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    become, leave = Goal(0, True), Goal(0, False)
    assert become.wins(logits).tolist() == [True, False] and leave.wins(logits).tolist() == [False, True]
    p = logits.softmax(1)
    assert torch.allclose(become.prob(p) + leave.prob(p), torch.ones(2))
    assert torch.isclose(become.loss(logits), -leave.loss(logits))
    with pytest.raises(UserError, match="exactly one"):
        Goal.of(None, None)


def test_goal_hits_need_the_threshold():
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    assert Goal(0).hits(probs).tolist() == [True, False]
    assert Goal(0).hits(probs, threshold=0.65).tolist() == [False, False]
    assert Goal(0, False).hits(probs).tolist() == [False, True]


@pytest.mark.parametrize("old, goal", [
    ("hen", Goal(None, True, "hen")),  # early patch.json: a bare name
    (8, Goal(8)),  # or a bare index
    ({"index": 8, "class": "hen"}, Goal(8, True, "hen")),  # one-pixel's summary
    ({"index": 8, "name": "hen", "mode": None}, Goal(8, True, "hen")),  # sweep.json, no mode yet
    ({"index": 3, "name": "cat", "mode": "untargeted"}, Goal(3, False, "cat")),
], ids=["name", "index", "onepixel", "sweep", "untargeted"])
def test_older_json_shapes_read_as_a_goal(old, goal):
    assert Goal.from_json(old) == goal


def test_json_round_trip_keeps_unknown_keys_and_alternatives():
    d = {"index": 8, "name": "hen", "mode": "targeted", "alternatives": ["cock"], "note": "from a newer version"}
    g = Goal.from_json(d)
    assert g.alternatives == ["cock"] and g.extra == {"note": "from a newer version"}
    assert g.to_json() == d and Goal.from_json(g.to_json()) == g
    assert Goal.from_flat(None, None, None) is None and Goal.from_flat("hen", 8, "untargeted") == Goal(8, False, "hen")


@pytest.mark.parametrize("bad, error", [
    ({"index": True}, ValueError), ({"index": -1}, ValueError), ({"index": "8"}, ValueError),
    ({"index": 8, "mode": "sideways"}, ValueError), ({"index": 8, "name": 5}, ValueError),
    ({"index": 8, "alternatives": "cock"}, ValueError), ([8], TypeError), (None, TypeError),
])
def test_bad_json_is_refused(bad, error):
    with pytest.raises(error):
        Goal.from_json(bad)


def test_of_takes_exactly_one_and_labels_say_which():
    assert Goal.of(3) == Goal(3, True) and Goal.of(None, 3) == Goal(3, False)
    assert (Goal.of(3).target, Goal.of(3).away_from) == (3, None)
    assert (Goal.of(None, 3).target, Goal.of(None, 3).away_from) == (None, 3)
    with pytest.raises(UserError, match="exactly one"):
        Goal.of(3, 4)
    assert (Goal(8, True, "hen").label(), Goal(8).label(), Goal(None).label()) == ("hen", "#8", "?")
