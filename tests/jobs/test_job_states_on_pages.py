"""The jobs page tells the four states apart (issue 12's leftovers): each state has its own badge
class, its word in the page's language, and the stylesheet gives each class its own colours and
mark, so "排队中" is no longer an unstyled badge next to "运行中"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.extensions import db
from app.jobs.models import Job, JobState
from tests.web.builders import login

WORDS = {
    "zh": {"queued": "排队中", "running": "运行中", "succeeded": "已完成", "failed": "失败"},
    "en": {"queued": "Queued", "running": "Running", "succeeded": "Succeeded", "failed": "Failed"},
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_job_state_has_its_own_badge_and_word(app, world, lang):
    user = world.users["reg_tt"]
    for state in JobState:
        db.session.add(Job(kind="colour_sweep", params={}, requested_by_id=user.id, state=state))
    db.session.commit()
    html = login(app, "reg_tt").get(f"/jobs?lang={lang}").get_data(as_text=True)
    for state in JobState:
        badge = re.search(
            rf'data-state="{state}".*?<span class="badge job-state job-state-{state}">([^<]+)</span>', html, re.S
        )
        assert badge, (state, html[:800])
        assert badge.group(1).strip() == WORDS[lang][str(state)]


def test_the_stylesheet_colours_and_marks_each_job_state_differently():
    css = (Path(__file__).parents[2] / "app" / "static" / "css" / "app.css").read_text(encoding="utf-8")
    rules = {}
    for state in JobState:
        body = re.search(rf"\.job-state-{state} \{{([^}}]+)\}}", css)
        mark = re.search(rf'\.job-state-{state}::before \{{ content:"([^"]+)"; \}}', css)
        assert body and mark, state
        colours = dict(re.findall(r"(background|color):\s*([^;]+);", body.group(1)))
        assert colours["background"] != colours["color"], state
        rules[state] = (colours["background"], colours["color"], mark.group(1))
    assert len({r[:2] for r in rules.values()}) == len(JobState)  # four colourings
    assert len({r[2] for r in rules.values()}) == len(JobState)  # four marks
