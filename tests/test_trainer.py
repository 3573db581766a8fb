"""The shared trainer on a tiny regression: resume equals an uninterrupted run, selection keeps the
best check, patience stops, a checkpoint from other settings is not resumed."""
import math

import numpy as np
import torch

from common import trainer


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(64, 4)).astype(np.float32))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])

    def step(u: int) -> float:
        rows = torch.from_numpy(np.random.default_rng([seed, u]).choice(64, 16))  # batch u: a function of u
        opt.zero_grad()
        loss = ((model(x[rows]) - y[rows]) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    return model, opt, step


def _scores(model: torch.nn.Module, script: list[float] | None = None):
    """validate(): R-precision from a script of scores (one per check), or minus the weights' distance."""
    calls = []

    def validate() -> dict:
        calls.append(1)
        if script is not None:
            return {"r_precision": script[len(calls) - 1]}
        w = model.weight.detach().numpy().ravel()
        return {"r_precision": -float(np.abs(w - [1, -2, 0.5, 0]).sum())}

    return validate


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    model, opt, step = _setup()
    whole = trainer.run(trainer.Loop(40, 10, "whole", tmp_path / "a.pt", "k"), model, [opt], step, _scores(model),
                        trainer.Selection())

    model2, opt2, step2 = _setup()
    ckpt = tmp_path / "b.pt"
    trainer.run(trainer.Loop(20, 10, "first half", ckpt, "k"), model2, [opt2], step2, _scores(model2),
                trainer.Selection())
    model3, opt3, step3 = _setup()  # a new process: fresh weights, resumed from the checkpoint at update 20
    steps: list[int] = []
    counted = lambda u: steps.append(u) or step3(u)  # noqa: E731
    resumed = trainer.run(trainer.Loop(40, 10, "resumed", ckpt, "k"), model3, [opt3], counted, _scores(model3),
                          trainer.Selection())
    assert steps == list(range(20, 40))  # only the updates after the checkpoint
    assert [h["update"] for h in resumed.history] == [10, 20, 30, 40]
    assert resumed.best == whole.best
    for name, value in whole.best_state.items():
        assert torch.equal(value, resumed.best_state[name])
        assert torch.equal(model.state_dict()[name], model3.state_dict()[name])


def test_selection_keeps_the_best_check_and_patience_stops(tmp_path):
    model, opt, step = _setup()
    sel = trainer.run(trainer.Loop(100, 10, "t", None, "k", patience=2), model, [opt], step,
                      _scores(model, [0.1, 0.3, 0.2, 0.25, 0.9]), trainer.Selection())
    assert [h["update"] for h in sel.history] == [10, 20, 30, 40]  # two checks below 0.3, then stop
    assert sel.best == 0.3 and [h["improved"] for h in sel.history] == [True, True, False, False]
    assert not torch.equal(sel.best_state["weight"], model.weight.detach())  # the kept weights are update 20's


def test_without_validation_the_latest_weights_are_kept(tmp_path):
    model, opt, step = _setup()
    sel = trainer.run(trainer.Loop(30, 10, "refit", None, "k"), model, [opt], step, None, trainer.Selection())
    assert math.isinf(sel.best) and all(math.isnan(h["val_r_precision"]) for h in sel.history)
    assert torch.equal(sel.best_state["weight"], model.weight.detach())


def test_a_checkpoint_from_other_settings_starts_afresh(tmp_path):
    ckpt = tmp_path / "c.pt"
    model, opt, step = _setup()
    trainer.run(trainer.Loop(20, 10, "old", ckpt, "settings A"), model, [opt], step, None, trainer.Selection())
    model2, opt2, step2 = _setup()
    steps: list[int] = []
    counted = lambda u: steps.append(u) or step2(u)  # noqa: E731
    trainer.run(trainer.Loop(30, 10, "same", ckpt, "settings A"), model2, [opt2], counted, None, trainer.Selection())
    assert steps == list(range(20, 30))  # resumed at update 20
    steps.clear()
    trainer.run(trainer.Loop(30, 10, "new", ckpt, "settings B"), model2, [opt2], counted, None, trainer.Selection())
    assert steps == list(range(30))  # another key: trained from update 0
    trainer.drop_checkpoints(ckpt)
    assert not ckpt.exists()
