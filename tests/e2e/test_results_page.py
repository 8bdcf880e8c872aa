"""Results in the browser: Anna's page lists the demo laboratory's results newest first, with
reference ranges, the leukocytes flagged high by the laboratory and the earlier total
cholesterol marked high from its range; "History" draws the leukocytes over time as an inline
SVG chart, the high value marked, and hides it again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import OpenPage, assert_no_problems, log_in
from tests.support import Server


@pytest.mark.e2e
def test_the_patient_sees_her_results_marked_and_a_values_history(
    open_page: OpenPage, server: Server
) -> None:
    page, problems = open_page("patient")
    page.goto("/patient/")
    log_in(page, "anna@demo.test")
    results = page.get_by_test_id("results")
    expect(results.get_by_test_id("result")).to_have_count(5)
    newest = results.get_by_test_id("result").filter(has_text="Complete blood count").first
    expect(newest.get_by_test_id("result-out-of-range")).to_have_text("1 out of range")
    leukocytes = newest.locator("[data-testid=result-value][data-code='6690-2']")
    expect(leukocytes).to_have_attribute("data-flag", "high")
    expect(leukocytes).to_contain_text("11.4 10^9/L")
    expect(leukocytes).to_contain_text("↑ High")
    expect(leukocytes).to_contain_text("4–10")
    cholesterol = results.locator("[data-testid=result-value][data-code='2093-3']")
    expect(cholesterol.last).to_have_attribute("data-flag", "high")  # 212 over ≤ 200, by range
    expect(cholesterol.first).to_have_attribute("data-flag", "normal")
    x_ray = results.get_by_test_id("result").filter(has_text="Chest X-ray")
    expect(x_ray.get_by_test_id("result-conclusion")).to_contain_text("No focal lesions")

    leukocytes.get_by_test_id("result-history-button").click()
    chart = newest.get_by_test_id("result-history")
    points = chart.get_by_test_id("history-point")
    expect(points).to_have_count(2)
    expect(points.nth(1)).to_have_attribute("data-flag", "high")
    label = re.compile(r"^Leukocytes: 6\.1 on .+, 11\.4 on .+$")
    expect(chart.locator("svg")).to_have_attribute("aria-label", label)
    leukocytes.get_by_test_id("result-history-button").click()
    expect(chart).to_have_count(0)
    assert_no_problems(problems)
