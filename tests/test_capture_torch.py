"""A PyTorch training loop under %%track with no logging code (issue #20 item 2), in a real IPython
shell: the module's weights, size and layers, the optimizer's settings, the losses the loop
appends as step metrics; the same weights with and without %%track; the registry round trip."""

from __future__ import annotations

import io
import pickle
import textwrap

import httpx
import numpy as np
import pytest
import torch

import nbmlops as nbm
from nbmlops.capture import model_formats

NETS = """
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, n_in=4, hidden=8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.layers(x)


class Wide(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(4, width)
"""

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
X = torch.randn(64, 4)
y = X[:, :1] * 2 + 0.1 * torch.randn(64, 1)
"""

LOOP = """
torch.manual_seed(1)
lr = 0.05
model = MLP()
optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
loss_fn = nn.MSELoss()
losses = []
for epoch in range(20):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
"""


@pytest.fixture
def nets(tmp_path, monkeypatch, shell):
    """An importable module ``nets`` defining MLP (no-argument constructor) and Wide."""
    (tmp_path / "nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(tmp_path))
    shell.run_cell(SETUP + "from nets import MLP, Wide\n")
    return shell


def _run(shell, source: str):
    result = shell.run_cell(source)
    assert result.success, result.error_in_exec
    return nbm.get_run(nbm.runs()["run_id"][0])


def test_a_training_loop_is_captured_with_no_logging_code(nets):
    run = _run(nets, "%%track\n" + LOOP)
    assert run.params == {
        "lr": 0.05,
        "SGD.momentum": 0.9,
        "SGD.weight_decay": 0,
        "model.n_parameters": 4 * 8 + 8 + 8 + 1,
    }
    history = run.metric_history("losses")
    assert history["step"].tolist() == list(range(20))
    assert history["value"].tolist() == pytest.approx(nets.user_ns["losses"])
    models = [(a["name"], a["meta"]["class"], a["meta"]["format"]) for a in run.artifacts
              if a["kind"] == "model"]  # fmt: skip
    assert models == [("model", "nets.MLP", "torch-safetensors")]  # not loss_fn: no state
    layers = next(a for a in run.artifacts if a["name"] == "model.architecture.txt")
    text = run.store.objects.read_verified(layers["sha256"]).decode()
    assert "# nets.MLP: 49 parameters" in text and "Linear(in_features=4, out_features=8" in text


def test_the_same_weights_with_and_without_track(nets):
    nets.run_cell(LOOP)
    untracked = {k: v.clone() for k, v in nets.user_ns["model"].state_dict().items()}
    _run(nets, "%%track\n" + LOOP)
    tracked = nets.user_ns["model"].state_dict()
    assert all(torch.equal(untracked[k], tracked[k]) for k in untracked)


def test_log_metric_with_step_keeps_working_and_is_not_logged_twice(nets):
    source = LOOP.replace("losses.append(loss.item())", "losses.append(loss.item())\n"
                          "    nbm.log_metric('losses', loss.item() * 10, step=epoch)")  # fmt: skip
    run = _run(nets, "%%track\nimport nbmlops as nbm\n" + source)
    history = run.metric_history("losses")
    assert history["value"].tolist() == pytest.approx([v * 10 for v in nets.user_ns["losses"]])


@pytest.mark.parametrize(
    ("body", "metrics"),
    [
        ("history = {'loss': [], 'acc': []}\nfor e in range(3):\n"
         "    history['loss'].append(0.5 ** e)\n    history['acc'].append(e)\n",
         {"history.loss": [1.0, 0.5, 0.25], "history.acc": [0, 1, 2]}),
        ("val = {}\nfor e in range(3):\n    val[e] = torch.tensor(e * 0.5)\n",
         {"val": [0.0, 0.5, 1.0]}),
        ("preds = X[:, 0].tolist()\nflags = []\nflags.append(True)\n", {}),
    ],
)  # fmt: skip
def test_curves_come_from_lists_built_in_place_only(nets, body, metrics):
    run = _run(nets, "%%track\n" + body)
    assert {k: run.metric_history(k)["value"].tolist() for k in metrics} == metrics
    assert set(run.metrics) == set(metrics)  # no curve from a returned list, nor from bools


def test_a_module_from_an_earlier_cell_trained_here_is_captured(nets):
    nets.run_cell("net = MLP()")
    loop = "for _ in range(3):\n    opt.zero_grad(); net(X).sum().backward(); opt.step()\n"
    run = _run(nets, "%%track\nopt = torch.optim.Adam(net.parameters(), lr=1e-3)\n" + loop)
    assert [a["name"] for a in run.artifacts if a["kind"] == "model"] == ["net"]
    assert run.params["Adam.betas"] == "[0.9, 0.999]" and run.params["Adam.lr"] == 1e-3


def test_registry_round_trip_without_pickle(nets, monkeypatch):
    _run(nets, "%%track\n" + LOOP)
    version = nbm.register_model(nbm.runs()["run_id"][0], "mlp")
    assert (version.format, version.model_class) == ("torch-safetensors", "nets.MLP")
    assert {"torch", "safetensors"} <= set(version.libraries)  # what reads the weights
    monkeypatch.setattr(pickle, "loads", pytest.fail)
    monkeypatch.setattr(pickle, "Unpickler", pytest.fail)
    loaded = nbm.load_model("mlp", allow_pickle=False)
    assert type(loaded).__name__ == "MLP" and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(nets.user_ns["X"]), nets.user_ns["model"](nets.user_ns["X"]))


def test_torch_save_format_loads_with_weights_only(nets):
    model = nets.user_ns["MLP"]()
    version = nbm.register_model(model, "plain", format="torch-state-dict")
    assert version.format == "torch-state-dict"
    data = version.store.objects.read_verified(version.sha256)
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert type(nbm.load_model("plain")).__name__ == "MLP"


LOCAL = """
class Local(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
"""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("Wide(3)", "weights of a nets.Wide, whose constructor needs arguments"),
        ("Local()", "defined in a notebook and this process has no such class"),
    ],
)
def test_a_module_that_cannot_be_rebuilt_says_how_to_load_its_weights(nets, make, message):
    nets.run_cell(LOCAL)
    version = nbm.register_model(nets.run_cell(make).result, "odd")
    if make == "Local()":
        del nets.user_ns["Local"]  # as in a fresh process
    with pytest.raises(nbm.RegistryError, match=message) as caught:
        nbm.load_model("odd")
    assert "load_state_dict(safetensors.torch.load_file(<artifact path>))" in str(caught.value)
    assert caught.value.__notes__ == [
        f"Artifact path: {version.store.objects.path_of(version.sha256)}"
    ]
    assert version.format in model_formats.TORCH_FORMATS


def test_a_registered_module_is_served_over_rest(nets):
    _run(nets, "%%track\n" + LOOP)
    nbm.register_model(nbm.runs()["run_id"][0], "mlp")
    nbm.set_alias("mlp", "champion", 1)
    rows = nets.user_ns["X"][:3]
    with torch.no_grad():
        expected = nets.user_ns["model"](rows)[:, 0].numpy()
    body = {"dataframe_split": {"columns": list("abcd"), "data": rows.tolist()}}
    with nbm.serve("mlp@champion", port=0) as handle:
        answer = httpx.post(f"{handle.url}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], expected, rtol=1e-6)
