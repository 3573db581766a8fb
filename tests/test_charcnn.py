import numpy as np
import pytest
import torch

from charcnn.config import TitleConfig
from charcnn.model import TitleModel
from charcnn.train import head_grad_, load_title_model, mixed_bce, train_title_model
from common import trainer
from common.errors import PipelineError
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE
from mmcf.predict import MMCFModels
from preprocess.artifacts import Artifacts, save_playlists, save_vocab
from preprocess.titles import title_chars
from tests.psfake import make_set, make_vocab, one_thread, whole_dense  # noqa: F401 (autouse fixture)


N_TRACKS = 120
VOCAB = make_vocab(N_TRACKS)
N_OUT = N_TRACKS + VOCAB.n_artists
TITLES = ["rock", "chill", "party", "sleep"]  # playlist of title i draws from tracks 30 i .. 30 i + 29


def _playlists(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    lists = [list(rng.choice(np.arange(30 * g, 30 * g + 30), 12, replace=False)) for g in group]
    return lists, [TITLES[g] for g in group]


def tiny_models() -> MMCFModels:
    """A frozen, randomly initialised autoencoder serving every category: the title model's
    training only needs it fixed."""
    cfg = MMCFConfig(hidden=8, schemes=[SchemeConfig("s", list(range(1, 11)))])
    dae = DAE(N_OUT, N_TRACKS, hidden=8)
    dae.init_weights(torch.Generator().manual_seed(0), np.full(N_OUT, 0.05))
    return MMCFModels(cfg=cfg, models={"s": dae.eval()}, fingerprint=VOCAB.fingerprint, dense=whole_dense(VOCAB, 100))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("art")
    lists, titles = _playlists(240, 0)
    train = make_set(lists, VOCAB, titles=titles[:-8] + ["🔥"] * 8)  # a few unusable titles
    vlists, vtitles = _playlists(30, 1)
    n_seeds = [0, 1, 5] * 10
    val = make_set([v[:n] for v, n in zip(vlists, n_seeds)], VOCAB, titles=vtitles,
                   holdouts=[v[n:] for v, n in zip(vlists, n_seeds)], category=[1, 2, 3] * 10)
    save_vocab(folder / "vocab.npz", VOCAB)
    save_playlists(folder / "train.npz", train)
    save_playlists(folder / "val.npz", val)
    return Artifacts(folder=folder, manifest={}, vocab=VOCAB)


def small_cfg(**kw) -> TitleConfig:
    base = dict(embed_dim=8, widths=[3, 5], filters=12, lstm_hidden=8, batch=16, epochs=3,
                lr=0.01, input_keep=0.3, predict_batch=7, train_scheme="s")
    return TitleConfig(**(base | kw))


def train(artifacts, out, cfg):
    return train_title_model(artifacts, tiny_models(), out, cfg, "cpu")


def test_cnn_output_depends_on_the_title_only():
    torch.manual_seed(0)
    model = TitleModel(TitleConfig(), N_OUT).eval()
    chars = torch.from_numpy(title_chars(["rock", "chill", "rock", "a very long title beyond 25 chars"]))
    p = model.probs(chars)
    assert p.shape == (4, N_OUT)
    assert not torch.allclose(p[0], p[1]) and torch.equal(p[0], p[2])
    assert not torch.allclose(p[3], p[0])
    assert torch.allclose(model.probs(chars[1:2])[0], p[1], atol=1e-6)  # not on the other titles of the batch
    backwards = model.probs(torch.from_numpy(title_chars(["kcor"])))[0]
    assert not torch.allclose(backwards, p[0])  # the characters' order counts, not only which they are


def test_lstm_variant_runs_and_reads_lengths():
    torch.manual_seed(0)
    model = TitleModel(TitleConfig(arch="lstm"), N_OUT)
    chars = torch.from_numpy(title_chars(["rock", "rock music", "", "z"]))
    z = model(chars)
    assert z.shape == (4, N_OUT) and torch.isfinite(z).all()
    z.sum().backward()
    assert model.encoder.lstm.weight_ih_l0.grad.abs().sum() > 0
    p = model.eval().probs(chars)
    assert not torch.allclose(p[0], p[1])


def test_unknown_arch_is_refused():
    with pytest.raises(PipelineError, match="arch"):
        TitleConfig(arch="gru")


def test_hand_written_head_gradient_matches_autograd():
    torch.manual_seed(0)
    n_rows, n_cols, n_plain = 7, 50, 4
    z = torch.randn(n_rows, n_cols, dtype=torch.float64) * 4
    z[0, 0], z[5, 3] = 30.0, -30.0  # saturated logits at a positive of each kind
    d = torch.rand(n_rows - n_plain, n_cols, dtype=torch.float64)
    c = torch.tensor([0, 0, 0, 0, 1, 2, 5], dtype=torch.float64)
    w_t = 1 / (1 + c)
    pos = torch.from_numpy(np.union1d(np.random.default_rng(0).integers(0, n_rows * n_cols, 60), [0, 5 * n_cols + 3]))
    d_full = torch.full((n_rows, n_cols), 0.5, dtype=torch.float64)
    d_full[n_plain:] = d
    zz = z.clone().requires_grad_(True)
    ref = mixed_bce(zz, d_full, w_t, 1 - w_t, pos, 0.55)
    ref.backward()
    g = z.clone()
    loss = head_grad_(g, n_plain, d, w_t, 1 - w_t, pos // n_cols, pos % n_cols, 0.55)
    assert loss == pytest.approx(float(ref.detach()), rel=1e-10)
    assert torch.allclose(g, zz.grad, atol=1e-12)


def test_bf16_dense_layer_trains_like_fp32(artifacts, tmp_path):
    """The bf16 matmuls round the logits and gradients, not the float32 loss and weights: the loss
    curve stays within a percent of fp32's and the model learns the titles as well."""
    runs = {p: train(artifacts, tmp_path / p, small_cfg(epochs=3, precision=p)) for p in ("fp32", "bf16")}
    for a, b in zip(runs["fp32"]["history"], runs["bf16"]["history"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.01)
    assert runs["bf16"]["best_val_r_precision"] == pytest.approx(runs["fp32"]["best_val_r_precision"], abs=0.02)


def test_training_learns_titles_and_writes_a_loadable_model(artifacts, tmp_path):
    cfg = small_cfg(epochs=4)
    summary = train(artifacts, tmp_path, cfg)
    assert summary["checks"] == 4 and summary["updates"] == 4 * summary["updates_per_epoch"] == 60
    assert all(np.isfinite(h["loss"]) for h in summary["history"])
    assert summary["history"][-1]["loss"] < summary["history"][0]["loss"]
    model = load_title_model(tmp_path, expect_fingerprint=VOCAB.fingerprint)
    # the model ranks each title's own track group on top
    p = model.probs(torch.from_numpy(title_chars(TITLES)))[:, :N_TRACKS].numpy()
    top = np.argsort(-p, axis=1)[:, :10] // 30
    assert (top == np.arange(4)[:, None]).mean() > 0.9
    # right group, random order inside it: about 12 / 30 plus artist credit; popularity about 0.1
    assert summary["best_val_r_precision"] > 0.3
    with pytest.raises(PipelineError, match="vocabulary"):
        load_title_model(tmp_path, expect_fingerprint="0" * 16)


def test_resume_after_a_kill_gives_the_same_weights(artifacts, tmp_path, monkeypatch):
    cfg = small_cfg()
    train(artifacts, tmp_path / "full", cfg)
    save = trainer._save
    calls = []

    def save_then_die(*args):
        save(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(artifacts, tmp_path / "killed", cfg)
    monkeypatch.setattr(trainer, "_save", save)
    summary = train(artifacts, tmp_path / "killed", cfg)
    assert [h["update"] for h in summary["history"]] == [15, 30, 45]  # 232 titled playlists: 15 updates an epoch
    a = torch.load(tmp_path / "full" / "title_model.pt", weights_only=True)["state"]
    b = torch.load(tmp_path / "killed" / "title_model.pt", weights_only=True)["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_another_config_is_not_resumed(artifacts, tmp_path):
    train(artifacts, tmp_path, small_cfg(epochs=1))
    summary = train(artifacts, tmp_path, small_cfg(epochs=2, lr=0.02))
    assert [h["update"] for h in summary["history"]] == [15, 30]


def test_missing_training_scheme_is_a_clear_error(artifacts, tmp_path):
    with pytest.raises(PipelineError, match="train_scheme"):
        train(artifacts, tmp_path, small_cfg(train_scheme="nope"))



def test_cli_bad_input_is_one_line_error(tmp_path, capsys):
    from charcnn.__main__ import main
    from common.cli import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(main, ["--artifacts", str(tmp_path / "nope"), "--dae", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and err[0].startswith("error:")
