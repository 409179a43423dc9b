"""Why this prediction, in JupyterLab Light and Dark: with rw.explore(model, ids, attribution=True),
choosing a step (a click on its token) has the live model attribute the prediction there, and the
strip under the tokens draws a bar under each earlier token (none under later ones: the model
reads left to right), under the right column, with a title saying what it shows."""
from pathlib import Path

import pytest
from e2e_support import (
    explorer_made_here,
    in_each_theme,
    kernel_execute,
    open_explorer_notebook,
    open_offline,
    token_model_cell,
    wait_for_text,
)

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
MODEL = token_model_cell("GRU", 16, ", attribution=True")
STEP = 9

# per pixel column of the bars' canvas (rows below the top two): whether anything is drawn
INKED_COLUMNS_JS = """(c) => {
    const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const inked = new Array(c.width).fill(false);
    for (let y = 2; y < c.height; y++) for (let x = 0; x < c.width; x++) if (data[4 * (y * c.width + x) + 3] > 0) inked[x] = true;
    return inked;
}"""


def test_attribution_is_drawn_under_the_earlier_tokens_of_the_chosen_step(lab, jupyter_server):
    page = lab
    widget = open_explorer_notebook(page, jupyter_server, "attribution.ipynb", MODEL)
    strip, title = widget.locator(".rw-attribution"), widget.locator(".rw-attribution-text")
    strip.wait_for(state="visible", timeout=30_000)
    assert "why the prediction at step 0" in wait_for_text(title, lambda s: "step 0" in s)

    widget.locator(f'.rw-token[data-t="{STEP}"]').click()            # choose a step
    text = wait_for_text(title, lambda s: s.startswith(f"why the prediction at step {STEP} ("), timeout=30)
    assert text.startswith(f"why the prediction at step {STEP} (") and "integrated gradients" in text, text
    assert kernel_execute(page, "print(explorer.view.attribution['t'])").strip() == str(STEP)

    bars = widget.locator(".rw-attribution-bars")
    inked = bars.evaluate(INKED_COLUMNS_JS)
    assert len(inked) == 15
    assert all(inked[: STEP + 1]), f"a bar under every token up to step {STEP}: {inked}"
    assert not any(inked[STEP + 1:]), f"no bar under a later token: {inked}"
    # each bar lies under its own token: the token's middle falls in its column of the stretched canvas
    box = bars.bounding_box()
    for t in (0, 4, STEP):
        token = widget.locator(f'.rw-token[data-t="{t}"]').bounding_box()
        middle = token["x"] + token["width"] / 2
        assert int((middle - box["x"]) / box["width"] * 15) == t, (t, token, box)
    tick = widget.locator(".rw-attribution-step").bounding_box()
    token = widget.locator(f'.rw-token[data-t="{STEP}"]').bounding_box()
    assert token["x"] <= tick["x"] + tick["width"] / 2 <= token["x"] + token["width"]

    ARTIFACTS.mkdir(exist_ok=True)

    def check(theme):
        assert _contrast(title) >= 4.5, theme
        assert bars.evaluate(INKED_COLUMNS_JS)[:STEP + 1] == [True] * (STEP + 1)
        widget.locator(".rw-main").screenshot(path=str(ARTIFACTS / f"attribution-{theme}.png"))
    in_each_theme(page, check)


def test_without_a_kernel_the_strip_says_a_live_model_is_needed(page, tmp_path):
    """An exported Explorer keeps the attribution last computed (step 5), and a step chosen there
    says that the live model, a running kernel, is needed."""
    explorer = explorer_made_here(MODEL)                      # the model and Explorer above, in this process
    explorer.select(t=5)
    assert explorer.view.attribution["t"] == 5
    blocked = open_offline(page, explorer.save_html(tmp_path / "attribution.html"))
    title = page.locator(".rw-explorer .rw-attribution-text").first
    assert "why the prediction at step 5" in wait_for_text(title, lambda s: "step 5" in s, timeout=60)
    page.locator('.rw-explorer .rw-token[data-t="11"]').first.click()
    text = wait_for_text(title, lambda s: "step 11" in s)
    assert "needs a running kernel" in text and "shown last for step 5" in text, text
    assert not any(page.locator(".rw-explorer .rw-attribution-bars").first.evaluate(INKED_COLUMNS_JS))
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".rw-explorer .rw-main").first.screenshot(path=str(ARTIFACTS / "attribution-no-kernel.png"))
    assert blocked == []


# WCAG contrast of an element's text colour against the first opaque background behind it
CONTRAST_JS = """(el) => {
    const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
    let bg = null;
    for (let n = el; n && !bg; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) bg = c;
    }
    const fg = lum(rgb(getComputedStyle(el).color)), back = lum(bg || [255, 255, 255]);
    return (Math.max(fg, back) + 0.05) / (Math.min(fg, back) + 0.05);
}"""


def _contrast(locator) -> float:
    return locator.evaluate(CONTRAST_JS)
