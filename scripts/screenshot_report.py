"""Open a Snakemake report (``snakemake --report results/report.html``) in headless Chromium and screenshot it.

For a person to look at what a reviewer sees: the landing page (workflow description and rule graph), then
every result the report holds, each opened as a reader would (category, subcategory, the eye button for the
content and the info button for its caption), saved as ``<out>/NN_<category>_<name>.png``, plus
``<out>/report_overview.png``, all pages in one contact sheet. The script fails when an image result does
not render or a caption is not on screen.

Needs the ``playwright`` Python package and a Chromium: ``pip install playwright`` and either Debian's
``apt-get install chromium`` (the default ``--chromium /usr/bin/chromium``) or ``playwright install
chromium``. Usage::

    snakemake --cores all && snakemake --report results/report.html
    python scripts/screenshot_report.py results/report.html --out report_screens

(Keep the screenshots out of results/: `glasspipe verify` would name them as extra files.)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _open_result(page, url: str, categories: dict, category: str, subcategory: str, path: str) -> None:
    """From a fresh page: category -> subcategory -> the result's eye (content) and info (caption) buttons."""
    page.goto(url)
    page.wait_for_selector("text=RESULTS", timeout=30_000)
    if len(categories) > 1:
        page.get_by_text(category, exact=True).first.click()
    if len(categories[category]) > 1:
        page.get_by_text(subcategory, exact=True).first.click()
    row = page.locator("tr", has=page.get_by_text(path, exact=True)).first
    row.locator("a[iconname=eye]").click()
    page.wait_for_timeout(500)
    row.locator("a[iconname=information-circle]").click()
    page.wait_for_timeout(500)


def _image_rendered(page) -> bool:
    """An <img> with a decoded picture is in the content pane (the menu has none)."""
    return page.evaluate("() => Array.from(document.images).some(img => img.complete && img.naturalWidth > 0)")


def screenshot_report(report: Path, out: Path, chromium: str | None, width: int = 1400, height: int = 1000) -> list:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    url = report.resolve().as_uri()
    shots, problems = [], []
    with sync_playwright() as playwright:
        launch = {"args": ["--no-sandbox"]}
        if chromium:
            launch["executable_path"] = chromium
        browser = playwright.chromium.launch(**launch)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        page.wait_for_selector("text=RESULTS", timeout=30_000)
        page.wait_for_timeout(1000)  # the rule graph is drawn after load
        shots.append(out / "00_workflow.png")
        page.screenshot(path=shots[-1])
        categories = page.evaluate("() => categories")
        results = page.evaluate(
            "() => Object.fromEntries(Object.entries(results).map(([k, v]) => [k, [v.mime_type, v.caption]]))"
        )
        index = 1
        for category in sorted(categories):
            for subcategory in sorted(categories[category]):
                for path in categories[category][subcategory]:
                    mime, caption = results[path]
                    _open_result(page, url, categories, category, subcategory, path)
                    shots.append(out / f"{index:02d}_{_slug(category)}_{_slug(Path(path).name)}.png")
                    page.screenshot(path=shots[-1])
                    index += 1
                    body = " ".join(page.inner_text("body").split())
                    caption_text = " ".join(re.sub(r"<[^>]+>", "", caption or "").split())
                    if caption_text and " ".join(caption_text.split()[:6]) not in body:
                        problems.append(f"{path}: caption not on screen")
                    if mime.startswith("image/") and not _image_rendered(page):
                        problems.append(f"{path}: image did not render")
                    print(f"{shots[-1]}: {category} / {subcategory} / {path} ({mime}); caption: {caption_text[:70]}")
        browser.close()
    contact_sheet(shots, out / "report_overview.png")
    if problems:
        raise RuntimeError("; ".join(problems))
    return shots


def contact_sheet(images: list[Path], out: Path, columns: int = 2) -> None:
    """All screenshots in one PNG, ``columns`` wide, each titled with its file name."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = -(-len(images) // columns)
    fig = Figure(figsize=(7 * columns, 5.2 * rows))
    FigureCanvasAgg(fig)
    for k, path in enumerate(images):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(mpimg.imread(path))
        ax.set_title(path.name, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report HTML (snakemake --report results/report.html)")
    parser.add_argument("--out", type=Path, default=Path("report_screens"), help="folder for the PNGs")
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or shutil.which("chromium-browser"),
        help="Chromium executable (default: chromium on PATH; none: playwright's own browser)",
    )
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"{args.report}: no such report; make it with `snakemake --report {args.report}`")
    try:
        shots = screenshot_report(args.report, args.out, args.chromium)
    except ImportError:
        parser.error("needs the playwright package: pip install playwright")
    print(f"{len(shots)} screenshots and {args.out / 'report_overview.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
