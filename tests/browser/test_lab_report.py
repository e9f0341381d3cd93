"""The lab's report in Chromium: the page renders, every plot loads, the verdicts lead."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.browser.conftest import Screenshots
from tests.support.lab import LabRun


def test_every_plot_of_the_report_renders(
    browser: Browser, quick_lab: LabRun, screenshots: Screenshots
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    try:
        page = context.new_page()
        page.goto((quick_lab.out / "report.html").as_uri())
        plots = page.locator("img.plot")
        expected = len(list((quick_lab.out / "plots").glob("*.png")))
        assert expected >= 6
        assert plots.count() == expected
        sizes = page.evaluate(
            "() => Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth,"
            " i.naturalHeight])"
        )
        for name, complete, width, height in sizes:
            assert complete, f"{name} did not load"
            assert width > 0, f"{name} has no width"
            assert height > 0, f"{name} has no height"
        first_table = page.locator("table").first
        assert first_table.get_attribute("id") == "claims"
        assert first_table.locator("tr").count() == len(quick_lab.results["claims"]) + 1
        assert "real session cookie header is" in page.locator("#fifty-one").inner_text()
        page.screenshot(path=screenshots.directory / "lab-report.png", animations="disabled")
        page.locator("#plot-verify").scroll_into_view_if_needed()
        page.screenshot(path=screenshots.directory / "lab-report-plot.png", animations="disabled")
    finally:
        context.close()
