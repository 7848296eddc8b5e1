"""The report as people see it: rendered by headless Chromium (Debian's, installed by setup), the page
is not blank and shows its title and charts; charts mark withheld cells instead of drawing zeros and
label small values readably. The screenshot is kept in var/test-artifacts/ for a person to look at."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from cleanroom.privacy.budget import BudgetStatus
from cleanroom.recommend.retail import PartyRecall, RecommenderOutcome
from cleanroom.report.content import build_report
from cleanroom.report.html import render_html
from cleanroom.report.plots import grouped_bars, trend_chart
from cleanroom.spec import AnalysisKind, Protocol
from cleanroom.spec.noise import Noise, PrivacyBudget
from tests.unit.test_report_sealing import _revealed

ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is missing: infra/bootstrap.sh installs it (infra/debian-packages.txt)"
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_report_renders_in_chromium(small_spec, tmp_path) -> None:
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    report = build_report(small_spec.spec, analysis, small_spec.sha256, "run-1", _revealed(analysis.cells), {})
    page = tmp_path / "report.html"
    page.write_bytes(render_html(report))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = chromium(
        f"--screenshot={screenshot}", "--window-size=1100,1500", page.as_uri(), profile=tmp_path / "p1"
    )
    assert screenshot.is_file(), shot.stderr[-2000:]
    image = Image.open(screenshot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert image.size == (1100, 1500) and len(colours) > 100  # text, tables and chart lines, not a blank page
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "p2").stdout
    assert f"<h1>{report.title}</h1>" in dom
    assert dom.count("<svg") >= 1 and "withheld" in dom  # the trend chart, with its withheld cells marked


def test_a_noised_report_states_its_noise_interval_and_budget(small_spec, tmp_path) -> None:
    spec = small_spec.spec
    trend = spec.category_month_sales.model_copy(
        update={"noise": Noise(rho=0.5, clip={"sales_cents": 50_000, "units": 50})}
    )
    noised = spec.model_copy(
        update={
            "analyses": [trend if a.id == trend.id else a for a in spec.analyses],
            "privacy": spec.privacy.model_copy(
                update={"budget": PrivacyBudget(rho_per_period=1, lifetime_rho=12)}
            ),
        }
    )
    budget = BudgetStatus("2026-12", 0.5, 1.0, 2.5, 12.0, date(2027, 1, 1))
    report = build_report(noised, trend, "a" * 64, "run-1", _revealed(trend.cells), {}, budget=budget)
    page = tmp_path / "report.html"
    page.write_bytes(render_html(report))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / "report-noised.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1100,3200", page.as_uri(), profile=tmp_path / "p1")
    assert screenshot.is_file()
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "p2").stdout
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())
    # Each measure spends rho 0.25: sd per party 500 EUR x sqrt(2); three parties: 1.96 x sqrt(3) x 707 EUR.
    assert "within ±2,400 EUR of it with 95% probability" in text
    assert "Privacy noise of ±€2,400 (95%) per cell is large against a typical cell of €1,074" in text
    assert "Noise for privacy." in text and "sales at 500 EUR" in text and "Exact, not estimated" not in text
    assert "spends zCDP ρ = 0.5" in text and "period 2026-12: rho 0.5 of 1 spent (resets 2027-01-01)" in text
    assert "decided on the exact sums by the disclosure rules above, which the noise does not cover" in text


def test_withheld_cells_are_marked_not_drawn_as_zero() -> None:
    svg = trend_chart(["2025-01", "2025-02", "2025-03"], {"Toys": [1200.0, None, 1500.0]}, "Sales", "sales (EUR)")
    assert "Toys (1 withheld)" in svg and "sales (EUR)" in svg and "1,200" in svg
    bars = grouped_bars(["north", "south"], {"mean": [12.5, None]}, "Baskets", "mean (EUR)", decimals=2)
    assert "withheld" in bars


def test_small_values_get_readable_ticks() -> None:
    svg = grouped_bars(["a", "b", "c"], {"Recall@10": [0.12, 0.08, 0.21]}, "Recall@10", "Recall@10", decimals=2)
    ticks = re.findall(r">(0\.\d\d)<", svg)
    assert len(set(ticks)) >= 3  # 0.00, 0.05, 0.10, ...: not every tick printed as "0"


def test_every_chart_is_the_same_svg_twice() -> None:
    # Reports are hashed and signed: drawing the same figures again gives the same bytes.
    args = (["x", "y"], {"s": [1.0, 2.0]}, "t", "u")
    assert grouped_bars(*args) == grouped_bars(*args)


@pytest.fixture(autouse=True)
def _no_display(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)


def _scalable_outcome(spec) -> RecommenderOutcome:  # type: ignore[no-untyped-def]
    parties = [p.name for p in spec.data_parties]
    lifts = [(0.01, 0.05), (-0.02, 0.02), (-0.06, -0.01), (-0.01, 0.03)]  # gains, nothing, worse, nothing
    recall = {
        party: PartyRecall(
            joint=0.25,
            alone=0.22,
            popularity=0.30 if i == 3 else 0.10,
            lift_interval=lifts[i],
            ndcg={"joint": 0.2, "alone": 0.18, "popularity": 0.07},
            recall_interval={"joint": (0.23, 0.27), "alone": (0.2, 0.24), "popularity": (0.09, 0.11)},
            ndcg_interval={"joint": (0.19, 0.21), "alone": (0.17, 0.19), "popularity": (0.06, 0.08)},
            delivered="own" if i == 2 else "joint",
        )
        for i, party in enumerate(parties)
    }
    return RecommenderOutcome(
        protocol=Protocol.ABY3,
        mode="scalable",
        items=360,
        items_modelled=310,
        rho=0.5,
        users_per_party=0,
        factors=8,
        epochs=8,
        top_n=10,
        seconds=10.0,
        delivered={p: True for p in parties},
        recall=recall,
    )


def test_the_scalable_recommender_section_says_per_retailer_whether_it_gains(small_spec, tmp_path) -> None:
    from tests.unit.test_joint_epochs import scalable_spec

    spec = scalable_spec(small_spec.spec, rho=0.5)
    trend = spec.category_month_sales
    report = build_report(
        spec, trend, "a" * 64, "run-1", _revealed(trend.cells), {}, recommender=_scalable_outcome(spec)
    )
    text = _rendered_text(report, tmp_path, "report-recommender.png")
    names = [p.display_name for p in spec.data_parties]
    assert "310 of the 360 products in the shared catalogue were bought by enough customers" in text
    assert f"{names[0]} gains from the collaboration: Recall@10 +0.030 over its own data alone" in text
    assert f"{names[1]} gains nothing measurable from the collaboration" in text
    assert f"{names[2]} does worse with the joint model than with its own data alone" in text
    assert "(+0.030); it sends its customers its own model's lists, which did better on its validation" in text
    assert "its own best sellers do as well" in text and "NDCG@10 (95% interval)" in text
    assert "0.250 (0.230–0.270)" in text  # Recall@10 with its bootstrap interval
    # Only the recommender is noised: the market figures are exact, the training's rho is stated.
    assert "Exact, not estimated." in text
    assert "The training spends ρ = 0.5 over the 10 epochs it could train" in text
    assert "This release spends zCDP ρ = 0.5" in text


def test_a_retailer_sending_the_blend_is_judged_by_the_blends_lift(small_spec, tmp_path) -> None:
    from tests.unit.test_joint_epochs import scalable_spec

    spec = scalable_spec(small_spec.spec)
    outcome = _scalable_outcome(spec)
    blends = {  # the first sends the blend, which beats alone where the joint model did not
        party: recall.model_copy(
            update={
                "blend": 0.26,
                "blend_lift_interval": (0.02, 0.06) if i == 0 else (-0.01, 0.09),
                "delivered": "blend" if i == 0 else recall.delivered,
                "lift_interval": (-0.01, 0.07) if i == 0 else recall.lift_interval,
                "recall_interval": recall.recall_interval | {"blend": (0.24, 0.28)},
                "ndcg": recall.ndcg | {"blend": 0.21},
            }
        )
        for i, (party, recall) in enumerate(outcome.recall.items())
    }
    trend = spec.category_month_sales
    report = build_report(
        spec,
        trend,
        "a" * 64,
        "run-1",
        _revealed(trend.cells),
        {},
        recommender=outcome.model_copy(update={"recall": blends}),
    )
    text = _rendered_text(report, tmp_path, "report-recommender-blend.png")
    names = [p.display_name for p in spec.data_parties]
    assert (
        f"{names[0]} gains from the collaboration: Recall@10 +0.040 over its own data alone with lists blending "
        "the joint model and its own; it sends its customers lists blending the joint model with its own" in text
    )
    assert f"{names[1]} gains nothing measurable from the collaboration" in text  # sends the joint lists
    assert "lift: blend - alone" in text and "0.260 (0.240–0.280)" in text and "lists sent" in text
    assert '"Blend": the joint model' in text


def _rendered_text(report, tmp_path: Path, screenshot: str) -> str:  # type: ignore[no-untyped-def]
    """The page's visible text; a screenshot of it is kept in the test artefacts to look at."""
    page = tmp_path / "report.html"
    page.write_bytes(render_html(report))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    chromium(
        f"--screenshot={ARTEFACTS / screenshot}", "--window-size=1100,6000", page.as_uri(), profile=tmp_path / "p1"
    )
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.read_text())).split())
