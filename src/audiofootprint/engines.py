"""Inference engines: a vocoder runs in torch eager (``torch``), or exported to ONNX and run by
ONNX Runtime (``onnxruntime``: the CPU execution provider, CUDA's where a GPU is present).

An ONNX Runtime model is an :class:`OnnxVocoder`: mel in, waveform out, with the mel settings and
feature convention of the model it was exported from, so the benchmark's evaluation and the
measurement harness run it as they run a torch model. Its size is the size of its ONNX file.
"""
from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch

from audiofootprint.failures import first_line
from audiofootprint.vocoders.base import MelSettings, Vocoder

ENGINES = ("torch", "onnxruntime")
OPSET = 17
INPUT, OUTPUT = "mel", "waveform"
EXPORT_FRAMES = 16  # the example's length; the number of frames is a dynamic dimension of the graph


class ExportError(ValueError):
    """The model cannot be exported to ONNX (the message says why)."""


def export_onnx(model: Vocoder, example: torch.Tensor) -> bytes:
    """``model`` as an ONNX graph (opset :data:`OPSET`, weights inside), any batch and number of frames.

    Uses torch's TorchScript-based exporter, which traces one call: a model that samples noise or
    loops over samples inside its forward cannot be exported faithfully and raises :class:`ExportError`.
    """
    example = example[..., :EXPORT_FRAMES].contiguous()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
            torch.onnx.export(model.for_inference(), (example,), buffer, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch", 2: "frames"}, OUTPUT: {0: "batch", 1: "samples"}})
    except Exception as error:  # noqa: BLE001 - any exporter failure is the reason the engine does not apply
        raise ExportError(f"torch.onnx.export failed ({type(error).__name__}: {first_line(error)})") from error
    graph = buffer.getvalue()
    random_ops = sorted({n.op_type for n in onnx.load_from_string(graph).graph.node if n.op_type.startswith("Random")})
    if random_ops:
        raise ExportError(f"the model draws noise inside its graph ({', '.join(random_ops)}): ONNX Runtime would "
                          "draw other noise than torch, so its output cannot be checked against torch's")
    return graph


class OnnxVocoder(Vocoder):
    """An ONNX graph run by ONNX Runtime behind the zoo's vocoder interface; float32 in and out."""

    engine = "onnxruntime"

    def __init__(self, graph: bytes, mel: MelSettings, feature_convention: str, threads: int | None = None,
                 device: str = "cpu"):
        import onnxruntime as ort

        super().__init__(mel=mel)
        self.graph, self.feature_convention = graph, feature_convention
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: ONNX Runtime warns on every unused initializer
        self.threads = options.intra_op_num_threads
        self.providers = execution_providers(device)
        self.session = ort.InferenceSession(graph, options, providers=self.providers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        feed = {INPUT: mel.detach().to("cpu", torch.float32).numpy()}
        return torch.from_numpy(self.session.run([OUTPUT], feed)[0]).to(mel.device)

    def for_inference(self) -> "OnnxVocoder":
        return self.eval()

    def artifact_bytes(self) -> int:
        """Bytes of the ONNX file this model ships as."""
        return len(self.graph)

    def num_params(self) -> int:
        """Number of values stored in the graph's initializers (weights, biases, scales)."""
        return self._initializer_sizes[0]

    def weight_bytes(self) -> int:
        """Bytes of the graph's initializers: the memory its weights take at rest."""
        return self._initializer_sizes[1]

    def engine_threads(self) -> int:
        return self.threads

    @functools.cached_property
    def _initializer_sizes(self) -> tuple[int, int]:
        """(values, bytes) of the graph's initializers, from one parse of the graph."""
        initializers = onnx.load_from_string(self.graph).graph.initializer
        return (sum(int(np.prod(t.dims)) for t in initializers),
                sum(onnx.numpy_helper.to_array(t).nbytes for t in initializers))

    def description(self) -> str:
        return f"ONNX Runtime {_ort_version()} ({', '.join(self.providers)}, {self.threads} intra-op threads)"


def execution_providers(device: str) -> list[str]:
    """ONNX Runtime's providers for ``device``: CUDA's (then the CPU's) on a CUDA device where this
    build of ONNX Runtime has it, else the CPU's."""
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def on_onnxruntime(model: Vocoder, example: torch.Tensor, device: str = "cpu") -> tuple[OnnxVocoder, float]:
    """``model`` exported and loaded in ONNX Runtime, and the largest absolute difference between
    the two engines' outputs for ``example`` (a fixed mel)."""
    from audiofootprint.features import convention_of

    runner = OnnxVocoder(export_onnx(model, example), model.mel, convention_of(model), device=device)
    return runner, max_abs_difference(model, runner, example)


def max_abs_difference(model: Vocoder, other: Vocoder, mel: torch.Tensor) -> float:
    """The largest absolute difference between two models' waveforms for ``mel``."""
    with torch.inference_mode():
        torch.manual_seed(0)
        expected = model(mel)
        torch.manual_seed(0)
        got = other(mel)
    if expected.shape != got.shape:
        raise ExportError(f"the exported graph returns shape {tuple(got.shape)}, torch {tuple(expected.shape)}")
    return float((expected - got).abs().max())



class TorchScriptVocoder(Vocoder):
    """A TorchScript file (``torch.jit.save``) behind the zoo's vocoder interface, run by torch."""

    def __init__(self, path: Path, mel: MelSettings, feature_convention: str):
        super().__init__(mel=mel)
        self.network = torch.jit.load(str(path), map_location="cpu").eval()
        self.feature_convention = feature_convention

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.network(mel)

    def for_inference(self) -> "TorchScriptVocoder":
        return self.eval()


#: What a model file's suffix says it is, and the engine that runs it.
MODEL_FILES = {".onnx": "onnxruntime", ".pt": "torch", ".ts": "torch"}


def load_model_file(path: str | Path, mel: MelSettings, feature_convention: str, sha256: str | None = None,
                    device: str = "cpu") -> Vocoder:
    """A user's exported vocoder: an ONNX file (run by ONNX Runtime) or a TorchScript file (run by
    torch), taking mels of ``mel`` in ``feature_convention``; its sha256 checked when given."""
    from audiofootprint.features import CONVENTIONS
    from audiofootprint.vocoders.weights import verify

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--model-file {path} does not exist")
    if path.suffix not in MODEL_FILES:
        raise ValueError(f"--model-file {path}: unknown kind {path.suffix!r}; give an ONNX file (.onnx) or a "
                         f"TorchScript file (.pt, .ts, saved with torch.jit.save)")
    if feature_convention not in CONVENTIONS:
        raise ValueError(f"--convention {feature_convention!r} is not one of {', '.join(CONVENTIONS)}")
    if sha256:
        verify(path, sha256)
    if MODEL_FILES[path.suffix] == "onnxruntime":
        try:
            return OnnxVocoder(path.read_bytes(), mel, feature_convention, device=device)
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's own error types: a file it cannot load
            raise ValueError(f"--model-file {path}: ONNX Runtime cannot load it ({first_line(error)})") from error
    try:
        return TorchScriptVocoder(path, mel, feature_convention)
    except RuntimeError as error:
        raise ValueError(f"--model-file {path}: not a TorchScript file ({first_line(error)}); save the model with "
                         "torch.jit.save(torch.jit.script(model), path)") from error
