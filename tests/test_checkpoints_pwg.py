"""Official checkpoints: kan-bayashi/ParallelWaveGAN (Parallel WaveGAN, MelGAN, Multi-band MelGAN)
and NVIDIA WaveGlow (NVIDIA/waveglow, DeepLearningExamples) load into the zoo's classes.

The official layouts below are written from the official constructors, not from our modules:
kan-bayashi/ParallelWaveGAN at 86740373ec609cb9fb192d472d2aea125041491a
(``parallel_wavegan/models/parallel_wavegan.py``, ``models/melgan.py``, ``layers/upsample.py``,
``layers/residual_block.py``, ``layers/residual_stack.py``, ``bin/train.py`` ``save_checkpoint``),
NVIDIA/waveglow at 8afb643df59265016af6bd255c7516309d675168 (``glow.py``, ``glow_old.py``,
``convert_model.py``) and NVIDIA/DeepLearningExamples ``PyTorch/SpeechSynthesis/Tacotron2/waveglow``
(``model.py``, ``entrypoints.py``). Each official convolution is a list of ``(key, shape)`` with the
legacy ``torch.nn.utils.weight_norm`` (dim 0) applied where the official code applies it; every
tensor gets its own random values, and each of our modules must end up with the folded weight of
the official module the official naming says it is.
"""
from __future__ import annotations

import math
import sys
import types
import warnings

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from audiofootprint.features import convention_of
from audiofootprint.vocoders.melgan import MelGAN, MultiBandMelGAN
from audiofootprint.vocoders.parallel_wavegan import ParallelWaveGAN, read_stats, rename_official
from audiofootprint.vocoders.waveglow import WaveGlow

# --------------------------------------------------------------------------- official layouts


def _conv(prefix: str, weight: tuple, c_out: int, bias: bool, wn: bool) -> list[tuple[str, tuple]]:
    """The state-dict entries of one torch conv layer, weight-normed (legacy API, dim 0) or not."""
    entries = [(f"{prefix}.bias", (c_out,))] if bias else []
    if wn:  # weight_g keeps dim 0 of the weight, 1 elsewhere
        entries += [(f"{prefix}.weight_g", (weight[0],) + (1,) * (len(weight) - 1)), (f"{prefix}.weight_v", weight)]
    else:
        entries.append((f"{prefix}.weight", weight))
    return entries


def conv1d(prefix, c_in, c_out, k, bias=True, wn=True):
    return _conv(prefix, (c_out, c_in, k), c_out, bias, wn)


def conv_transpose1d(prefix, c_in, c_out, k, bias=True, wn=True):
    # ConvTranspose1d weight is [in, out, k]: weight_norm's dim 0 is then the input channel
    return _conv(prefix, (c_in, c_out, k), c_out, bias, wn)


def conv2d(prefix, c_in, c_out, kh, kw, bias=True, wn=True):
    return _conv(prefix, (c_out, c_in, kh, kw), c_out, bias, wn)


def official_pwg(layers=30, stacks=3, residual=64, gate=128, skip=64, aux=80, kernel=3, context=2,
                 scales=(4, 4, 4, 4)):
    """ParallelWaveGANGenerator(**parallel_wavegan.v1 generator_params): ``use_weight_norm`` applies to
    every Conv1d and Conv2d (the ConvInUpsampleNetwork's too)."""
    spec = conv1d("first_conv", 1, residual, 1)
    spec += conv1d("upsample_net.conv_in", aux, aux, 2 * context + 1, bias=False)
    for i, s in enumerate(scales):  # up_layers: Stretch2d at 2i, Conv2d(1, 1, (1, 2s+1), bias=False) at 2i+1
        spec += conv2d(f"upsample_net.upsample.up_layers.{2 * i + 1}", 1, 1, 1, 2 * s + 1, bias=False)
    for n in range(layers):
        p = f"conv_layers.{n}"
        spec += conv1d(f"{p}.conv", residual, gate, kernel)
        spec += conv1d(f"{p}.conv1x1_aux", aux, gate, 1, bias=False)
        spec += conv1d(f"{p}.conv1x1_out", gate // 2, residual, 1)
        spec += conv1d(f"{p}.conv1x1_skip", gate // 2, skip, 1)
    spec += conv1d("last_conv_layers.1", skip, skip, 1)  # (ReLU at 0 and 2)
    spec += conv1d("last_conv_layers.3", skip, 1, 1)
    return spec


def official_melgan(out=1, channels=512, scales=(8, 8, 2, 2), stacks=3, kernel=7, stack_kernel=3, in_ch=80):
    """MelGANGenerator: one Sequential ``melgan``; weight norm on every Conv1d / ConvTranspose1d."""
    spec, index = [], 0

    def at(n):  # the Sequential index of the next layer, after n parameter-free layers
        nonlocal index
        index += n
        here = index
        index += 1
        return f"melgan.{here}"

    spec += conv1d(at(1), in_ch, channels, kernel)  # 0 ReflectionPad1d, 1 Conv1d
    ch = channels
    for s in scales:
        spec += conv_transpose1d(at(1), ch, ch // 2, 2 * s)  # LeakyReLU, ConvTranspose1d
        ch //= 2
        for j in range(stacks):
            p = at(0)  # ResidualStack: stack = LeakyReLU, Pad, Conv1d(k, dilation), LeakyReLU, Conv1d(1)
            spec += conv1d(f"{p}.stack.2", ch, ch, stack_kernel)
            spec += conv1d(f"{p}.stack.4", ch, ch, 1)
            spec += conv1d(f"{p}.skip_layer", ch, ch, 1)
    spec += conv1d(at(2), ch, out, kernel)  # LeakyReLU, ReflectionPad1d, Conv1d, (Tanh)
    return spec


def official_waveglow(n_flows=12, n_group=8, n_early_every=4, n_early_size=2, n_layers=8, n_channels=256,
                      kernel=3, n_mels=80, layout="glow"):
    """glow.WaveGlow (``layout="glow"``), DeepLearningExamples' model.WaveGlow (``"dle"``: one
    ``cond_layers.I`` per layer) or the oldest glow (``"old"``: also ``res_layers.I`` + ``skip_layers.I``)."""
    spec = conv_transpose1d("upsample", n_mels, n_mels, 1024, wn=False)
    n_half, remaining = n_group // 2, n_group
    for k in range(n_flows):
        if k % n_early_every == 0 and k > 0:
            n_half -= n_early_size // 2
            remaining -= n_early_size
        spec += [(f"convinv.{k}.conv.weight", (remaining, remaining, 1))]
        p = f"WN.{k}"
        spec += conv1d(f"{p}.start", n_half, n_channels, 1)
        spec += conv1d(f"{p}.end", n_channels, 2 * n_half, 1, wn=False)
        if layout == "glow":
            spec += conv1d(f"{p}.cond_layer", n_mels * n_group, 2 * n_channels * n_layers, 1)
        for i in range(n_layers):
            spec += conv1d(f"{p}.in_layers.{i}", n_channels, 2 * n_channels, kernel)
            if layout != "glow":
                spec += conv1d(f"{p}.cond_layers.{i}", n_mels * n_group, 2 * n_channels, 1)
            if layout == "old":
                if i < n_layers - 1:
                    spec += conv1d(f"{p}.res_layers.{i}", n_channels, n_channels, 1)
                spec += conv1d(f"{p}.skip_layers.{i}", n_channels, n_channels, 1)
            else:
                spec += conv1d(f"{p}.res_skip_layers.{i}", n_channels, 2 * n_channels if i < n_layers - 1
                               else n_channels, 1)
    return spec


def count(spec) -> int:
    return sum(math.prod(shape) for _, shape in spec)


def gains(spec) -> int:
    return sum(math.prod(shape) for key, shape in spec if key.endswith("weight_g"))


def fill(spec, seed=0, std=0.05) -> dict[str, torch.Tensor]:
    """Distinct random values for every official tensor (positive weight-norm gains)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in spec:
        if key.endswith("weight_g"):
            state[key] = torch.rand(shape, generator=gen) * 0.5 + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * std
    return state


def folded(state: dict, prefix: str) -> torch.Tensor:
    """``weight`` of an official layer: plain, or ``g * v / ||v||`` (norm over all but dim 0)."""
    if f"{prefix}.weight" in state:
        return state[f"{prefix}.weight"]
    g, v = state[f"{prefix}.weight_g"], state[f"{prefix}.weight_v"]
    norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
    return v * g / norm


def layers_of(state: dict) -> list[str]:
    return sorted({key.rsplit(".", 1)[0] for key in state})


def assert_landed(model: nn.Module, state: dict, ours_of) -> None:
    """Every official layer's (folded) weight and bias is in ``model``'s layer ``ours_of(official)``,
    and every parameter of ``model`` was covered."""
    covered = 0
    for official in layers_of(state):
        ours = model.get_submodule(ours_of(official))
        torch.testing.assert_close(ours.weight.detach(), folded(state, official), rtol=1e-5, atol=1e-7,
                                   msg=lambda m, o=official: f"{o}: {m}")
        covered += ours.weight.numel()
        if f"{official}.bias" in state:
            torch.testing.assert_close(ours.bias.detach(), state[f"{official}.bias"])
            covered += ours.bias.numel()
        else:
            assert ours.bias is None, official
    folded_params = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("original0"))
    assert covered == folded_params


def toolkit_file(generator: dict, **extra) -> dict:
    """``checkpoint-NNNNsteps.pkl`` as bin/train.py saves it (real optimizer and scheduler states)."""
    p = nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=1e-3)
    p.grad = torch.ones(3)
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[100000, 200000], gamma=0.5)
    return {"model": {"generator": generator, "discriminator": {"conv_layers.0.weight": torch.zeros(1)}},
            "optimizer": {"generator": opt.state_dict(), "discriminator": opt.state_dict()},
            "scheduler": {"generator": sched.state_dict(), "discriminator": sched.state_dict()},
            "steps": 400000, "epochs": 1234, **extra}


def write_stats_h5(path, mean, scale):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as handle:
        handle.create_dataset("mean", data=np.asarray(mean, dtype=np.float32))
        handle.create_dataset("scale", data=np.asarray(scale, dtype=np.float32))


# --------------------------------------------------------------------------- parameter counts


def test_official_layouts_have_the_published_parameter_counts():
    """The layouts above reproduce the official counts (conf/vocoder/*.yaml, as trained with weight
    norm); our default models have them too, less the weight-norm gains where they are folded."""
    pwg, mb, melgan = official_pwg(), official_melgan(4, 384, (8, 4, 2), 4), official_melgan()
    wg = official_waveglow()
    assert count(pwg) == 1_346_042
    assert count(mb) == 2_539_448
    assert count(melgan) == 4_266_050  # melgan.v1 = descript's Generator(80, 32, 3): the same network
    assert count(wg) == 87_879_272
    assert ParallelWaveGAN().num_params() == count(pwg) - gains(pwg) == 1_334_309
    assert MultiBandMelGAN().num_params() == count(mb)
    assert MelGAN().num_params() == count(melgan)
    assert WaveGlow().num_params() == count(wg) - gains(wg) == 87_731_816
    # DeepLearningExamples' per-layer conditioning convs hold as many values as the fused one
    assert count(official_waveglow(layout="dle")) == count(wg)


# --------------------------------------------------------------------------- Parallel WaveGAN


def _pwg_ours(official: str) -> str:
    if official.startswith("upsample_net.upsample.up_layers."):
        return f"upsample.smooth.{int(official.split('.')[3]) // 2}"
    return {"last_conv_layers.1": "post1", "last_conv_layers.3": "post2",
            "upsample_net.conv_in": "upsample.conv_in"}.get(official, official.replace("conv_layers.", "blocks."))


def test_parallel_wavegan_official_checkpoint(tmp_path):
    state = fill(official_pwg())
    path = tmp_path / "checkpoint-400000steps.pkl"
    torch.save(toolkit_file(state), path)
    model = ParallelWaveGAN()
    assert model.from_checkpoint(path) is model
    assert_landed(model, state, _pwg_ours)
    assert not model.has_feature_stats and "mean" not in model.state_dict()
    assert convention_of(model) == "log10"
    with torch.no_grad():
        wave = model(torch.randn(2, 80, 4) - 2.0)
    assert wave.shape == (2, 4 * 256) and torch.isfinite(wave).all()


def test_parallel_wavegan_upsampling_with_activations_is_refused():
    state = {"upsample_net.upsample.up_layers.1.weight": torch.ones(1, 1, 1, 9),
             "upsample_net.upsample.up_layers.4.weight": torch.ones(1, 1, 1, 9)}
    with pytest.raises(ValueError, match="activations"):
        rename_official(state)


# --------------------------------------------------------------------------- feature statistics


def test_stats_h5_normalises_the_input(tmp_path):
    """``(x - mean) / scale`` per band, as the toolkit's ``inference(normalize_before=True)``."""
    state = fill(official_pwg(), seed=3)
    path = tmp_path / "checkpoint-400000steps.pkl"
    torch.save(toolkit_file(state), path)
    mean, scale = np.arange(80) * 0.1 - 4.0, np.full(80, 0.5)
    write_stats_h5(tmp_path / "stats.h5", mean, scale)

    with_stats = ParallelWaveGAN().from_checkpoint(path)  # the stats.h5 beside it is read too
    alone = tmp_path / "alone" / path.name
    alone.parent.mkdir()
    shutil.copyfile(path, alone)
    plain = ParallelWaveGAN().from_checkpoint(alone)
    assert with_stats.has_feature_stats and not plain.has_feature_stats
    # by hand: band b of x is mean_b + 1.5, so every normalised value is 1.5 / 0.5 = 3
    x = torch.tensor(mean, dtype=torch.float32).view(1, 80, 1).repeat(1, 1, 3) + 1.5
    torch.testing.assert_close(with_stats.normalize_features(x), torch.full((1, 80, 3), 3.0))
    noise = torch.randn(1, 1, 3 * 256)
    with torch.no_grad():
        torch.testing.assert_close(with_stats(x, noise), plain(torch.full((1, 80, 3), 3.0), noise))
        assert not torch.allclose(with_stats(x, noise), plain(x, noise))

    # the statistics travel with our own checkpoints, and a second call changes nothing
    ours = tmp_path / "ours" / "generator.pt"
    ours.parent.mkdir()
    torch.save(with_stats.state_dict_for_checkpoint(), ours)
    again = ParallelWaveGAN().from_checkpoint(ours).load_companion_files(ours)
    torch.testing.assert_close(again.mean, torch.tensor(mean, dtype=torch.float32))
    with_stats.load_companion_files(path)
    with torch.no_grad():
        torch.testing.assert_close(again(x, noise), with_stats(x, noise))


def test_stats_npy_explicit_and_stats_in_the_state(tmp_path):
    stats = np.stack([np.linspace(-5, -1, 80), np.linspace(0.5, 2.0, 80)]).astype(np.float32)
    np.save(tmp_path / "stats.npy", stats)
    mean, scale = read_stats(tmp_path / "stats.npy")
    torch.testing.assert_close(mean, torch.from_numpy(stats[0]))
    torch.testing.assert_close(scale, torch.from_numpy(stats[1]))

    state = fill(official_pwg(), seed=4)
    path = tmp_path / "elsewhere" / "checkpoint-1000steps.pkl"
    path.parent.mkdir()
    torch.save(toolkit_file(state), path)
    assert not ParallelWaveGAN().from_checkpoint(path).load_companion_files(path).has_feature_stats
    model = ParallelWaveGAN().from_checkpoint(path).load_companion_files(path, stats=tmp_path / "stats.npy")
    torch.testing.assert_close(model.scale, torch.from_numpy(stats[1]))

    # a generator saved after the toolkit's register_stats carries mean/scale itself
    torch.save(toolkit_file({**state, "mean": torch.from_numpy(stats[0]), "scale": torch.from_numpy(stats[1])}), path)
    torch.testing.assert_close(ParallelWaveGAN().from_checkpoint(path).mean, torch.from_numpy(stats[0]))

    with pytest.raises(ValueError, match="80 mel bands"):
        np.save(tmp_path / "bad.npy", stats[:, :40])
        model.load_stats(tmp_path / "bad.npy")


def _skips(model, mel, noise):
    """The generator's skip sum, computed from its submodules (no normalisation anywhere)."""
    cond, x, total = model.upsample(mel), model.first_conv(noise), 0
    for block in model.blocks:
        x, s = block(x, cond)
        total = total + s
    return total * math.sqrt(1.0 / len(model.blocks))


def test_no_stats_changes_nothing(tmp_path):
    model = ParallelWaveGAN(layers=3, stacks=3, residual_channels=8, gate_channels=16, skip_channels=8)
    before = dict(model.state_dict())
    model.load_companion_files(tmp_path / "generator.pt")  # nothing beside it
    assert model.state_dict().keys() == before.keys() and model.mean is None
    mel, noise = torch.randn(1, 80, 2), torch.randn(1, 1, 512)
    assert torch.equal(model.normalize_features(mel), mel)
    expected = model.post2(torch.relu(model.post1(torch.relu(_skips(model, mel, noise)))))
    with torch.no_grad():
        torch.testing.assert_close(model(mel, noise), expected.squeeze(1).detach())


# --------------------------------------------------------------------------- MelGAN family


def _melgan_ours(official: str) -> str:
    parts = official.split(".")
    parts[0] = "model"
    if len(parts) > 2:
        parts[2] = {"stack": "block", "skip_layer": "shortcut"}[parts[2]]
    return ".".join(parts)


def test_multiband_melgan_official_checkpoint(tmp_path):
    state = fill(official_melgan(4, 384, (8, 4, 2), 4), seed=5)
    path = tmp_path / "checkpoint-1000000steps.pkl"
    torch.save(toolkit_file(state), path)
    write_stats_h5(tmp_path / "stats.h5", np.full(80, -2.0), np.full(80, 1.5))
    for model in (MultiBandMelGAN(), MultiBandMelGAN().for_inference()):
        model.from_checkpoint(path).load_companion_files(path)
        assert_landed(model, state, lambda official: official)
        assert model.has_feature_stats and convention_of(model) == "log10"
        with torch.no_grad():
            wave = model(torch.randn(1, 80, 5) - 2.0)
        assert wave.shape == (1, 5 * 256) and torch.isfinite(wave).all()


def test_multiband_melgan_config_yml_sets_the_pqmf_of_old_toolkit_versions(tmp_path):
    state = fill(official_melgan(4, 96, (8, 4, 2), 4), seed=6)
    path = tmp_path / "checkpoint-1000000steps.pkl"
    torch.save(toolkit_file(state), path)
    (tmp_path / "config.yml").write_text(
        "sampling_rate: 22050\nfft_size: 1024\nhop_size: 256\nwin_length: null\nnum_mels: 80\nfmin: 80\n"
        "fmax: 7600\nformat: hdf5\ngenerator_type: MelGANGenerator\ngenerator_params:\n  out_channels: 4\n"
        "  channels: 96\nversion: 0.4.2\n")
    model = MultiBandMelGAN(channels=96)
    with pytest.warns(UserWarning, match="PQMF"):
        model.from_checkpoint(path).load_companion_files(path)
    assert (model.pqmf.taps, model.pqmf.cutoff_ratio, model.pqmf.beta) == (62, 0.15, 9.0)
    assert model.mel.f_min == 80.0 and model.mel.f_max == 7600.0

    # a generator saved after the toolkit's load_model carries its PQMF filters: they are used
    from audiofootprint.vocoders.pqmf import PQMF

    bank = PQMF(4, 62, 0.15, 9.0)
    filters = {f"pqmf.{name}": getattr(bank, name) for name in ("analysis_filter", "synthesis_filter")}
    torch.save(toolkit_file({**state, **filters, "pqmf.updown_filter": torch.zeros(4, 4, 4)}), path)
    fresh = MultiBandMelGAN(channels=96).from_checkpoint(path)
    torch.testing.assert_close(fresh.pqmf.synthesis_filter, bank.synthesis_filter)
    assert not torch.allclose(MultiBandMelGAN(channels=96).pqmf.synthesis_filter, bank.synthesis_filter)


def test_kan_bayashi_melgan_loads_into_melgan_with_the_log10_convention(tmp_path):
    state = fill(official_melgan(), seed=7)
    path = tmp_path / "checkpoint-4000000steps.pkl"
    torch.save(toolkit_file(state), path)
    (tmp_path / "config.yml").write_text(
        "sampling_rate: 22050\nfft_size: 1024\nhop_size: 256\nwin_length: null\nnum_mels: 80\nfmin: 80\n"
        "fmax: 7600\nformat: hdf5\ngenerator_type: MelGANGenerator\ngenerator_params:\n  out_channels: 1\n")
    write_stats_h5(tmp_path / "stats.h5", np.full(80, -2.5), np.full(80, 0.8))
    model = MelGAN()
    assert convention_of(model) == "melgan"
    with pytest.warns(UserWarning, match="f_min 0.0 -> 80.0"):
        model.from_checkpoint(path).load_companion_files(path)
    assert_landed(model, state, _melgan_ours)
    assert convention_of(model) == "log10" and model.has_feature_stats
    assert (model.mel.f_min, model.mel.f_max) == (80.0, 7600.0)
    with torch.no_grad():
        wave = model(torch.randn(1, 80, 5) - 2.0)
    assert wave.shape == (1, 5 * 256) and torch.isfinite(wave).all()

    # our checkpoint of it stays a toolkit MelGAN; descript weights bring back "melgan"
    ours = tmp_path / "ours.pt"
    torch.save(model.state_dict_for_checkpoint(), ours)
    again = MelGAN().from_checkpoint(ours)
    assert convention_of(again) == "log10" and again.has_feature_stats
    with torch.no_grad():
        torch.testing.assert_close(again(torch.ones(1, 80, 5)), model(torch.ones(1, 80, 5)))
    descript = tmp_path / "best_netG.pt"
    torch.save({_melgan_ours(k.rsplit(".", 1)[0]) + "." + k.rsplit(".", 1)[1]: v for k, v in state.items()}, descript)
    again.from_checkpoint(descript)
    assert convention_of(again) == "melgan"


def test_toolkit_config_of_another_generator_is_refused(tmp_path):
    path = tmp_path / "checkpoint-1steps.pkl"
    (tmp_path / "config.yml").write_text("generator_type: HiFiGANGenerator\nhop_size: 256\nnum_mels: 80\n")
    with pytest.raises(ValueError, match="HiFiGANGenerator"):
        ParallelWaveGAN().load_companion_files(path)
    (tmp_path / "config.yml").write_text("generator_type: MelGANGenerator\ngenerator_params: {out_channels: 4}\n")
    with pytest.raises(ValueError, match="MultiBandMelGAN"):
        MelGAN().load_companion_files(path)


# --------------------------------------------------------------------------- WaveGlow

SLIM_WG = dict(n_flows=4, n_group=8, n_early_every=2, n_early_size=2, n_layers=3, n_channels=16)
SLIM_WG_OURS = dict(n_flows=4, n_group=8, n_early_every=2, n_early_size=2, wn_layers=3, wn_channels=16)


def _check_waveglow(model: WaveGlow) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        wave = model(torch.randn(1, 80, 3) - 4.0)
    assert wave.shape == (1, 3 * 256) and torch.isfinite(wave).all()


def test_waveglow_state_dict_checkpoint(tmp_path):
    """NVIDIA/waveglow glow.py layout, re-saved as ``{"model": state_dict}``."""
    state = fill(official_waveglow(**SLIM_WG), seed=8)
    path = tmp_path / "waveglow_state.pt"
    torch.save({"model": state, "iteration": 580000}, path)
    model = WaveGlow(**SLIM_WG_OURS).from_checkpoint(path)
    assert_landed(model, state, lambda official: official)
    _check_waveglow(model)


def test_waveglow_deeplearningexamples_checkpoint(tmp_path):
    """``{"state_dict": {"module.…"}, "config": …}`` with per-layer ``cond_layers``."""
    state = fill(official_waveglow(**SLIM_WG, layout="dle"), seed=9)
    config = {"n_mel_channels": 80, "n_flows": 4, "n_group": 8, "n_early_every": 2, "n_early_size": 2,
              "WN_config": {"n_layers": 3, "kernel_size": 3, "n_channels": 16}}
    path = tmp_path / "nvidia_waveglowpyt_fp32_20190427.pt"
    torch.save({"epoch": 1000, "config": config, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = WaveGlow(**SLIM_WG_OURS).from_checkpoint(path)
    for k in range(4):
        fused = torch.cat([folded(state, f"WN.{k}.cond_layers.{i}") for i in range(3)])
        torch.testing.assert_close(model.WN[k].cond_layer.weight.detach(), fused)
        torch.testing.assert_close(model.WN[k].cond_layer.bias.detach(),
                                   torch.cat([state[f"WN.{k}.cond_layers.{i}.bias"] for i in range(3)]))
    rest = {k: v for k, v in state.items() if ".cond_layers." not in k}
    for official in layers_of(rest):
        torch.testing.assert_close(model.get_submodule(official).weight.detach(), folded(rest, official))
    _check_waveglow(model)

    config["WN_config"]["n_channels"] = 512
    torch.save({"config": config, "state_dict": state}, path)
    with pytest.raises(ValueError, match="wn_channels=512"):
        WaveGlow(**SLIM_WG_OURS).from_checkpoint(path)


def test_waveglow_oldest_layout_is_converted_as_convert_model_does(tmp_path):
    state = fill(official_waveglow(**SLIM_WG, layout="old"), seed=10)
    path = tmp_path / "old.pt"
    torch.save(state, path)
    model = WaveGlow(**SLIM_WG_OURS).from_checkpoint(path)
    for k in range(4):
        for i in range(3):
            parts = [f"WN.{k}.res_layers.{i}"] if i < 2 else []
            expected = torch.cat([folded(state, p) for p in parts + [f"WN.{k}.skip_layers.{i}"]])
            torch.testing.assert_close(model.WN[k].res_skip_layers[i].weight.detach(), expected)
    _check_waveglow(model)


def test_pickled_waveglow_module_is_refused_with_the_resave_recipe(tmp_path, monkeypatch):
    """The original waveglow_256channels.pt: ``{"model": <glow.WaveGlow>}`` (a pickled module)."""
    glow = types.ModuleType("glow")

    class OfficialWaveGlow(nn.Module):  # stands in for glow.WaveGlow
        def __init__(self):
            super().__init__()
            self.upsample = nn.ConvTranspose1d(80, 80, 16, stride=8)

    OfficialWaveGlow.__module__, OfficialWaveGlow.__qualname__ = "glow", "WaveGlow"
    glow.WaveGlow = OfficialWaveGlow
    monkeypatch.setitem(sys.modules, "glow", glow)
    path = tmp_path / "waveglow_256channels.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: no source code for the container
        torch.save({"model": OfficialWaveGlow(), "iteration": 0}, path)
    monkeypatch.delitem(sys.modules, "glow")
    with pytest.raises(ValueError) as info:
        WaveGlow(**SLIM_WG_OURS).from_checkpoint(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert str(path) in message and "glow.WaveGlow" in message
    assert "weights_only=False" in message and "state_dict()" in message and "trust" in message
    assert "torch.save({'model': m.state_dict()}, 'waveglow_state.pt')" in message
