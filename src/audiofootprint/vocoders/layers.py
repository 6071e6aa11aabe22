"""Layer and checkpoint helpers shared by the vocoder modules.

* Weight-normed convolutions (:func:`wn_conv1d`, :func:`wn_conv_transpose1d`) as the
  GAN vocoders build them: :mod:`torch.nn.utils.parametrizations` weight norm, magnitude
  over dim 0 (like the legacy API), weights drawn from N(0, std) before normalisation.
* Checkpoint key mapping between the parametrisation names
  (``*.parametrizations.weight.original0/1``) and the legacy ``*.weight_g``/``*.weight_v``
  names that official checkpoints carry (:func:`to_legacy_weight_norm_keys`,
  :func:`adapt_weight_norm_state`), folding of weight-norm pairs into plain weights for
  models built in inference form (:func:`fold_weight_norm`), and unwrapping of nested
  checkpoints such as ``{"generator": state}`` (:func:`unwrap_checkpoint`).

Folding the weight norm of a *model* (for inference) is :meth:`.base.Vocoder.for_inference`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _param_weight_norm

__all__ = [
    "adapt_weight_norm_state",
    "fold_weight_norm",
    "get_padding",
    "to_legacy_weight_norm_keys",
    "unwrap_checkpoint",
    "weight_norm",
    "wn_conv1d",
    "wn_conv_transpose1d",
]

_PARAM_G = ".parametrizations.weight.original0"
_PARAM_V = ".parametrizations.weight.original1"
_LEGACY_G = ".weight_g"
_LEGACY_V = ".weight_v"
_WEIGHT_NORM_SUFFIXES = ((_LEGACY_G, "g"), (_LEGACY_V, "v"), (_PARAM_G, "g"), (_PARAM_V, "v"))


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------


def weight_norm(module: nn.Module) -> nn.Module:
    """Apply weight normalisation (magnitude over dim 0, like the legacy API)."""
    return _param_weight_norm(module, name="weight", dim=0)


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with the given dilation."""
    return (kernel_size * dilation - dilation) // 2


def wn_conv1d(in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1, padding: int | None = None,
              std: float | None = 0.01, **kw) -> nn.Module:
    """Weight-normed stride-1 ``Conv1d``; 'same' padding unless ``padding`` is given.

    Weights are drawn from N(0, ``std``) before normalisation (``std=None`` keeps PyTorch's
    default initialisation); ``kw`` goes to :class:`torch.nn.Conv1d` (e.g. ``bias``).
    """
    if padding is None:
        padding = get_padding(kernel_size, dilation)
    conv = nn.Conv1d(in_ch, out_ch, kernel_size, 1, dilation=dilation, padding=padding, **kw)
    if std is not None:
        nn.init.normal_(conv.weight, 0.0, std)
    return weight_norm(conv)


def wn_conv_transpose1d(in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int = 0,
                        output_padding: int = 0, std: float | None = 0.01) -> nn.Module:
    """Weight-normed ``ConvTranspose1d``, weights drawn from N(0, ``std``) before normalisation."""
    conv = nn.ConvTranspose1d(in_ch, out_ch, kernel_size, stride, padding=padding,
                              output_padding=output_padding)
    if std is not None:
        nn.init.normal_(conv.weight, 0.0, std)
    return weight_norm(conv)


# ---------------------------------------------------------------------------
# Checkpoint key mapping
# ---------------------------------------------------------------------------


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))


def _group_weight_norm(state: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """Split a state dict into plain entries and weight-norm pairs ``{prefix: {"g": .., "v": ..}}``
    (legacy ``weight_g``/``weight_v`` or parametrisation ``original0``/``original1`` names)."""
    plain: dict = {}
    pairs: dict = {}
    for key, value in state.items():
        for suffix, kind in _WEIGHT_NORM_SUFFIXES:
            if key.endswith(suffix):
                pairs.setdefault(key[: -len(suffix)], {})[kind] = value
                break
        else:
            plain[key] = value
    return plain, pairs


def _fold(prefix: str, pair: Mapping[str, torch.Tensor]) -> torch.Tensor:
    g, v = pair.get("g"), pair.get("v")
    if g is None or v is None:
        raise KeyError(f"incomplete weight-norm pair for {prefix!r}")
    return v * (g / _norm_except_dim0(v))


def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict:
    """Replace weight-norm pairs (``weight_g``/``weight_v`` or parametrisation
    ``original0``/``original1``) by the plain ``weight`` they define (norm over dim 0)."""
    out, pairs = _group_weight_norm(state)
    for prefix, pair in pairs.items():
        out[prefix + ".weight"] = _fold(prefix, pair)
    return out


def to_legacy_weight_norm_keys(state: Mapping[str, torch.Tensor]) -> dict:
    """Rename parametrisation keys to the legacy ``weight_g``/``weight_v`` names."""
    out = {}
    for key, value in state.items():
        if key.endswith(_PARAM_G):
            key = key[: -len(_PARAM_G)] + _LEGACY_G
        elif key.endswith(_PARAM_V):
            key = key[: -len(_PARAM_V)] + _LEGACY_V
        out[key] = value
    return out


def adapt_weight_norm_state(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """Bring a state dict into ``model``'s own key layout.

    Accepts legacy (``weight_g``/``weight_v``), parametrised
    (``parametrizations.weight.original0/1``) and folded (plain ``weight``)
    weight-norm layouts whichever layout the model currently has (with or
    without weight norm folded by :meth:`.base.Vocoder.for_inference`).
    """
    expected = set(model.state_dict().keys())
    plain, pairs = _group_weight_norm(state)
    result: dict = {}
    for key, value in plain.items():
        prefix = key[: -len(".weight")] if key.endswith(".weight") else None
        if key not in expected and prefix is not None and prefix + _PARAM_V in expected:
            # Folded weight into a weight-normed model: split into (g, v).
            result[prefix + _PARAM_G] = _norm_except_dim0(value)
            result[prefix + _PARAM_V] = value
        else:
            result[key] = value
    for prefix, pair in pairs.items():
        if prefix + _PARAM_V in expected or prefix + _LEGACY_V in expected:
            g_suffix, v_suffix = (_PARAM_G, _PARAM_V) if prefix + _PARAM_V in expected else (_LEGACY_G, _LEGACY_V)
            if "g" not in pair or "v" not in pair:
                raise KeyError(f"incomplete weight-norm pair for {prefix!r}")
            result[prefix + g_suffix] = pair["g"]
            result[prefix + v_suffix] = pair["v"]
        else:  # weight norm folded on our side: fold.
            result[prefix + ".weight"] = _fold(prefix, pair)
    return result


def unwrap_checkpoint(state: Mapping, *paths: tuple[str, ...]) -> Mapping:
    """Return the state dict found at the first matching nested key path.

    ``state`` itself is returned when no path leads to a mapping (a bare state dict).
    """
    for path in paths:
        node = state
        for key in path:
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                break
        else:
            if isinstance(node, Mapping):
                return node
    return state
