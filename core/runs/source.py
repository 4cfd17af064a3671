"""Starting from a trained run (``train --from RUN_DIR``): its encoder in, its other heads carried over.

A new run may start from a finished one: it takes the source's encoder (and the heads of
tasks both runs have). When the shared representation stays exactly as it was -- a
frozen encoder with hard sharing -- the source's heads for tasks the new run lacks are
copied into the new model folder unchanged, so one run can grow task by task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shopmtl.core.config import Config, ConfigError
from shopmtl.core.model.model import MultiTaskModel
from shopmtl.core.runs import checkpoint, manifest
from shopmtl.registry.spec import TaskSpec


@dataclass(frozen=True)
class SourceRun:
    """The finished run a new one starts from: its model folder and its resolved config."""

    folder: Path  # <source run>/model
    config: Config

    @property
    def backbone(self) -> Path:
        """The encoder's transformers config and tokenizer files."""
        return self.folder / "backbone"


def open_source(
    run_dir: str | Path | None, *, allow_pickle: bool = False, trained: Iterable[str] = ()
) -> SourceRun | None:
    """The run ``init_from`` names (its config read once), or ``None`` when there is none.

    Its heads for tasks other than ``trained`` may be carried over with their priors: one held
    only as an old pickle is refused here, before any training, unless ``allow_pickle``.
    """
    if run_dir is None:
        return None
    folder = checkpoint.source_model_dir(run_dir)
    if not allow_pickle:
        trained = set(trained)
        checkpoint.refuse_pickled_priors(
            folder, [name for name in checkpoint.feature_tasks(folder) if name not in trained]
        )
    return SourceRun(folder, checkpoint.read_run_config(folder.parent))


def inherit_encoder(config: Config, source_config: Config) -> Config:
    """The source run's encoder settings (the weights must fit them), keeping this run's freezing."""
    if source_config.encoder.lora.per_task:
        raise ConfigError(f"init_from {config.init_from}: that run has one LoRA adapter per task, so there is no "
                          "single encoder to start from; start from a run without encoder.lora.per_task")
    encoder = source_config.encoder.model_copy(
        update={"freeze": config.encoder.freeze, "freeze_embeddings": config.encoder.freeze_embeddings}
    )
    return config.model_copy(update={"encoder": encoder})


def carry_over_heads(
    source: SourceRun,
    model: MultiTaskModel,
    target: Path,
    say: Callable[[str], None],
    specs: Mapping[str, TaskSpec] | None = None,
    allow_pickle: bool = False,
) -> None:
    """Copy the source's other heads into ``target`` when they still read what they were trained on
    (``specs``: the installed tasks, which turn an old pickled prior into arrays with ``allow_pickle``)."""
    if any(p.requires_grad for p in model.encoder.parameters()) or model.sharing is not None:
        say(f"the shared representation was trained further, so the other heads of {source.folder} were not carried "
            "over (set encoder.freeze=true, with sharing.kind=hard, to add tasks without changing it)")
    elif source.config.sharing.kind != "hard":
        # Its heads read the source's gated experts, not the pooled vector this model gives them.
        say(f"{source.folder.parent} shares its encoder through {source.config.sharing.kind} gates, so its heads were "
            "not carried over (add tasks to a run trained with sharing.kind=hard, here with encoder.freeze=true)")
    elif manifest.trusting():
        # Copied in, they would be listed in this run's manifest as its own: never vouch for unverified files.
        say(f"{source.folder.parent} was opened unverified ({manifest.TRUST_FLAG}), so its other heads were "
            "not carried over")
    else:
        carried = checkpoint.carry_heads(source.folder, target, specs, allow_pickle=allow_pickle)
        if carried:
            say(f"carried over unchanged heads from {source.folder}: {', '.join(carried)}")
