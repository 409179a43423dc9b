import time
from e2e_support import open_and_run, write_notebook
CODE = '''import torch, rnnwidgets as rw, time
torch.manual_seed(0)
model = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
x = torch.randn(4, 20, 3)
mon = rw.TrainingMonitor(model, clip=0.5, interval=0)
loss = model(x)[0].pow(2).mean(); loss.backward()
for i in range(10): mon.step(1.0 + i * 0.1)
display(mon)
print("trained")'''
def test_debug(jupyter_server, page):
    write_notebook(jupyter_server.root / "dbg.ipynb", CODE)
    w = open_and_run(page, jupyter_server.lab_url("dbg.ipynb"), widget_selector=".rw-monitor")
    page.locator(".jp-OutputArea-output", has_text="trained").first.wait_for(timeout=60000)
    time.sleep(2)
    w.screenshot(path="/tmp/gf/e2e/monitor.png")
