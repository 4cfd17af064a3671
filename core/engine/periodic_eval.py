"""One validation during training: score the model, keep the best one, save a resumable checkpoint."""

from __future__ import annotations

from itertools import chain

from shopmtl.core.engine.evaluate import evaluate, selection_score
from shopmtl.core.engine.guards import check_primary_metrics, check_weights
from shopmtl.core.engine.training_run import TrainingRun
from shopmtl.core.runs import checkpoint, fsdp
from shopmtl.core.runs.fsdp import is_sharded, whole_weights
from shopmtl.core.runs.state import TrainState, save_checkpoint


def validate(run: TrainingRun, state: TrainState, since_eval: dict[str, list[float]]) -> bool:
    """Validate, keep the best model, save a resumable checkpoint; True = stop early.

    :param since_eval: each task's training losses since the last validation (recorded, then cleared).
    """
    config, accelerator, tasks = run.config, run.accelerator, run.tasks
    with whole_weights(accelerator, run.core):  # sharded (FSDP) weights gathered for the block
        # Never score or save a NaN weight (parameters and buffers: under FSDP, state_dict() holds only shards).
        check_weights(
            chain(run.core.named_parameters(), run.core.named_buffers()), state.step, config
        )
        metrics = evaluate(
            accelerator,
            run.core,
            run.bank,
            run.validation_tasks or tasks,
            "val",
            config.training.eval_batch_size,
            run.plugins.metrics,
        )
    check_primary_metrics(metrics, {n: t.spec.primary_metric for n, t in tasks.items()}, state.step)
    score = selection_score(metrics, tasks, config.training.selection_metrics)
    improved = state.record(
        score,
        {
            "step": state.step,
            "score": score,
            "val": metrics,
            "train_loss": {t: sum(v) / len(v) for t, v in since_eval.items() if v},
        },
    )
    since_eval.clear()
    accelerator.log(
        {
            f"val/{t}/{k}": v
            for t, m in metrics.items()
            for k, v in m.items()
            if isinstance(v, float)
        },
        step=state.step,
    )
    run.plugins.notify("on_evaluation", run=run.info, step=state.step, split="val", metrics=metrics)
    save(run, state, improved)
    run.say(
        f"step {state.step}: val score {score:.4f}"
        + (" (best)" if improved else "")
        + " | "
        + " | ".join(
            f"{t} {tasks[t].spec.primary_metric}={m.get(tasks[t].spec.primary_metric)}"
            for t, m in metrics.items()
        )
    )
    patience = config.training.early_stopping_patience
    return patience is not None and state.bad_evals >= patience


def save(run: TrainingRun, state: TrainState, improved: bool) -> None:
    """The best model into ``<run>/model`` (when ``improved``), and the resumable ``checkpoints/last``."""
    features = {n: t.state for n, t in run.tasks.items()}
    last, model_dir = (
        run.output_dir / checkpoint.LAST_CHECKPOINT,
        run.output_dir / checkpoint.MODEL_DIR,
    )
    if is_sharded(run.accelerator):  # every process holds a slice: they save together
        if improved:
            fsdp.save_full_model(model_dir, run.accelerator, run.core, features, run.tokenizer)
        fsdp.save_sharded_checkpoint(
            last, run.accelerator, run.optimizer, state, run.sampler, run.scheduler
        )
    elif run.accelerator.is_main_process:
        if improved:
            checkpoint.save_model_dir(model_dir, run.core, features, run.tokenizer)
        save_checkpoint(
            last,
            run.core,
            features,
            run.tokenizer,
            run.optimizer,
            state,
            run.sampler,
            run.scheduler,
        )
    run.accelerator.wait_for_everyone()
    if run.accelerator.is_main_process:
        run.plugins.notify("on_checkpoint_saved", run=run.info, path=last, step=state.step)
