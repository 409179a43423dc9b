"""The quickstart's counting unit reads at first sight: robust colour limits in JupyterLab Light and Dark."""
import numpy as np
import pytest
from conftest import ARTIFACTS
from e2e_support import canvas_rgb, kernel_execute

from rnnwidgets.widgets.still import oklab

pytestmark = pytest.mark.e2e

# The quickstart's model and training (notebooks/01_quickstart.ipynb), then its Explorer on c.
QUICKSTART = """\
import numpy as np, torch
from torch import nn
import rnnwidgets as rw
from rnnwidgets.data import brackets
torch.manual_seed(0)
torch.set_num_threads(1)
inputs, targets, depth = brackets.next_char_data(512, length=60, max_depth=4, noise=0.2, seed=0)

class CharLSTM(nn.Module):
    def __init__(self, vocab=len(brackets.VOCAB), embed=8, hidden=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids):
        states, _ = self.lstm(self.embed(ids))
        return self.head(states)

model = CharLSTM()
# trained once a test run: the first notebook saves the weights and the RNG's state after training,
# the others load both, the same model bit for bit (the kernels run in the server's notebook folder)
import os
if os.path.exists("quickstart_trained.pt"):
    trained = torch.load("quickstart_trained.pt")
    model.load_state_dict(trained["model"])
    torch.set_rng_state(trained["rng"])
else:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(600):
        batch = torch.randint(0, len(inputs), (64,))
        logits = model(inputs[batch])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[batch].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save({"model": model.state_dict(), "rng": torch.get_rng_state()}, "quickstart_trained.pt.part")
    os.replace("quickstart_trained.pt.part", "quickstart_trained.pt")
model.eval()
text = brackets.strings(1, 80, max_depth=4, noise=0.2, seed=1)[0]
explorer = rw.explore(model, brackets.encode(text)[None], tokens=[list(text)], decode=list(brackets.VOCAB))
explorer.view.quantity = "c"
explorer"""

# The unit of c that follows the depth best, and how far apart its values are.
COUNTER = """\
c = explorer.trace.layers["lstm.l0"].states["c"][0]
d = brackets.depths(text)
corr = [abs(np.corrcoef(c[:, u], d)[0, 1]) for u in range(c.shape[1])]
u = int(np.argmax(corr))
print(u, round(corr[u], 3), c[:, u].min(), c[:, u].max(), np.abs(c).max())"""


BACKGROUND_JS = """() => {
    const probe = document.createElement('div');
    probe.style.background = 'var(--jp-layout-color0)';
    document.body.append(probe);
    const rgb = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return rgb;
}"""


def _row_span(page, unit: int) -> float:
    """The share of the colour bar the unit's heatmap row covers, read from the drawn pixels: each
    pixel is placed at its nearest entry of the legend's colour bar."""
    image = canvas_rgb(page.locator(".rw-explorer .rw-heatmap").first).astype(int)
    bar = canvas_rgb(page.locator(".rw-explorer .rw-legend canvas").first)[0].astype(int)  # (entries, 3)
    row = image[unit]
    position = np.argmin(((row[:, None, :] - bar[None, :, :]) ** 2).sum(axis=2), axis=1)
    return (position.max() - position.min()) / (len(bar) - 1)


def _check_uniform(theme: str, bar: np.ndarray):
    """The legend's colour bar, as the browser drew it, is perceptually uniform: OKLab lightness
    moves away from the page's at every one of 16 equal steps out from the midpoint, the halves
    mirror each other, and neighbouring samples are equally far apart in OKLab (within 8-bit rounding)."""
    assert len(bar) == 257, f"{theme}: the colour bar has {len(bar)} entries"
    lab = oklab(bar[::8])  # 33 samples, the midpoint at 16
    lightness = lab[:, 0]
    darker = lightness[0] < lightness[16]
    for half in (lightness[16::-1], lightness[16:]):
        steps = np.diff(half) * (-1 if darker else 1)
        assert (steps > 0.01).all(), f"{theme}: lightness not monotone out from the midpoint: {half.round(3)}"
    assert np.abs(lightness[16::-1] - lightness[16:]).max() < 0.005, f"{theme}: halves differ in lightness"
    distance = np.linalg.norm(np.diff(lab, axis=0), axis=1)
    assert np.abs(distance / distance.mean() - 1).max() < 0.08, f"{theme}: unequal steps {distance.round(4)}"


def test_the_counting_unit_spans_half_the_colour_scale_in_light_and_dark(quickstart):
    page = quickstart   # the quickstart's Explorer (conftest.py), shared with test_explorer_look_browser
    unit, corr, lo, hi, peak = kernel_execute(page, COUNTER).split()
    unit = int(unit)
    assert float(corr) > 0.9, f"no unit of c counts the depth (best correlation {corr})"
    assert float(peak) > 2 * float(hi), "the trained model has no saturated unit to test against"
    legend = page.locator(".rw-explorer .rw-legend").first
    assert "robust limits" in legend.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _check_theme(page, theme, light, unit, lo, hi, legend)
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        _set_theme(page, "JupyterLab Light", "true")


def _set_theme(page, theme: str, light: str):
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)


def _check_theme(page, theme: str, light: str, unit, lo, hi, legend):
    _set_theme(page, theme, light)
    page.wait_for_timeout(500)  # the theme's CSS applied, the heatmap repainted on it
    span = _row_span(page, unit)
    assert span >= 0.5, f"{theme}: the counting unit {unit} (c {lo}..{hi}) spans {span:.0%} of the colour scale"
    background = page.evaluate(BACKGROUND_JS)  # the page background as rgb(...)
    bar = canvas_rgb(legend.locator("canvas"))[0]
    middle = "rgb(%d, %d, %d)" % tuple(bar[len(bar) // 2])
    assert middle == background, f"{theme}: the diverging map's midpoint {middle} is not the background {background}"
    _check_uniform(theme, bar)
    page.locator(".rw-explorer").first.screenshot(path=str(ARTIFACTS / f"colour-limits-{theme.split()[1].lower()}.png"))
