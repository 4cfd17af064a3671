"""Variant 3 of the throughput benchmark: four Hugging Face ``Trainer`` fine-tunes, one per
task -- the usual recipe (fixed padding to ``max_length``, fp32) or with its best settings
(dynamic padding, and bf16 where the run's precision is bf16). Run in worker subprocesses by ``throughput.py``."""

from __future__ import annotations

import time
from typing import Any

from throughput_common import loop_seconds, now, task_frames


def _numeric_features(spec, train, frame):
    """Standardised numerics (missing -> 0, plus a missing flag) and categorical indices, fitted on train."""
    import numpy as np
    import pandas as pd

    numeric = np.zeros((len(frame), len(spec.numeric)), dtype=np.float32)
    missing = np.zeros_like(numeric)
    for j, column in enumerate(spec.numeric):
        fit = pd.to_numeric(train[column], errors="coerce").astype(float)
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        std = float(fit.std()) if fit.notna().sum() > 1 else 1.0
        numeric[:, j] = np.where(np.isnan(values), 0.0, (values - float(fit.mean())) / (std or 1.0))
        missing[:, j] = np.isnan(values)
    vocabularies = [
        {v: k + 1 for k, v in enumerate(sorted(train[c].dropna().astype(str).unique()))}
        for c in spec.categorical
    ]
    categorical = np.array(
        [
            [vocab.get(str(v), 0) for v in frame[c]]
            for c, vocab in zip(spec.categorical, vocabularies)
        ],
        dtype=np.int64,
    ).T.reshape(len(frame), len(spec.categorical))
    return numeric, missing, categorical, [len(v) + 1 for v in vocabularies]


def worker_trainer(
    plan: dict[str, Any],
    examples: int,
    task: str,
    steps: int,
    fixed: bool,
    bf16: bool,
    output_dir: str,
) -> dict[str, Any]:
    """Variant 3: one HF ``Trainer`` fine-tune of one task, the usual way (or with its best settings)."""
    started = time.perf_counter()
    import torch
    from shopmtl.core import api
    from transformers import Trainer, TrainerCallback

    torch.set_num_threads(plan["threads"])
    config, plugins = task_frames(plan, examples)
    spec = plugins.tasks[task]
    train = api.subsample(api.build_task_data(spec, config), config.tasks[task], config.seed)[
        "train"
    ]
    train = api.with_derived(spec, train)  # user_profile's history counts, as shopmtl computes them
    path = api.resolve_encoder_path(config.encoder.name)
    rows, cardinalities, pad_id = trainer_rows(spec, train, path, plan["max_length"], fixed)
    seen: dict[str, Any] = {"padded": 0, "real": 0, "batches": 0}
    stamps: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen["train_begin"] = now()

        def on_train_end(self, args, state, control, **kwargs):
            seen["train_end"] = now()

    torch.manual_seed(config.seed)
    model = task_model(spec, path, cardinalities, stamps)
    trainer = Trainer(
        model=model,
        args=training_arguments(plan, config, steps, bf16, output_dir),
        train_dataset=rows,
        data_collator=collator(plan["max_length"], fixed, pad_id, seen),
        callbacks=[Clock()],
    )
    ready = time.perf_counter()
    trainer.train()
    finished = time.perf_counter()
    steps_done = trainer.state.global_step
    per_batch_padded = seen["padded"] / max(1, seen["batches"])
    per_batch_real = seen["real"] / max(1, seen["batches"])
    return {
        "task": task,
        "steps": steps_done,
        "samples": steps_done * plan["batch_size"],
        # one step gives no interval: fall back to the whole train() call (first-step costs included)
        "loop_s": loop_seconds(stamps)
        if len(stamps) > 1
        else seen["train_end"][0] - seen["train_begin"][0],
        "loop_cpu_s": loop_seconds(stamps, 1)
        if len(stamps) > 1
        else seen["train_end"][1] - seen["train_begin"][1],
        "train_call_s": finished - ready,
        "setup_s": ready - started,
        "padded_tokens_total": per_batch_padded * steps_done,
        "real_tokens_total": per_batch_real * steps_done,
        "optimizer": type(
            trainer.optimizer.optimizer
            if hasattr(trainer.optimizer, "optimizer")
            else trainer.optimizer
        ).__name__,
    }


def trainer_rows(spec, train, path: str, max_length: int, fixed: bool):
    """The Trainer's rows (token ids, numeric and categorical features, labels), the
    categorical cardinalities and the pad token id."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    padding = "max_length" if fixed else False
    texts = train[spec.text].fillna("").astype(str).tolist()
    if spec.text_pair:  # the usual cross-encoder input: [CLS] history [SEP] description [SEP]
        pairs = train[spec.text_pair].fillna("").astype(str).tolist()
        encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=padding)
    else:
        encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=padding)
    numeric, missing, categorical, cardinalities = _numeric_features(spec, train, train)
    labels = train[list(spec.labels)].to_numpy(dtype=np.float32)
    rows = [
        {
            "input_ids": encoded["input_ids"][i],
            "token_type_ids": encoded["token_type_ids"][i],
            "attention_mask": encoded["attention_mask"][i],
            "numeric": numeric[i],
            "numeric_missing": missing[i],
            "categorical": categorical[i],
            "labels": labels[i],
        }
        for i in range(len(train))
    ]
    return rows, cardinalities, tokenizer.pad_token_id or 0


def collator(max_length: int, fixed: bool, pad_id: int, seen: dict[str, Any]):
    """Pads a batch to ``max_length`` (fixed) or its longest text, counting padded and real tokens."""
    import numpy as np
    import torch

    def collate(features):
        width = max_length if fixed else max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for k, f in enumerate(features):
            n = len(f["input_ids"])
            ids[k, :n] = torch.tensor(f["input_ids"])
            types[k, :n] = torch.tensor(f["token_type_ids"])
            mask[k, :n] = torch.tensor(f["attention_mask"])
        seen["padded"] += ids.numel()
        seen["real"] += int(mask.sum())
        seen["batches"] += 1
        stack = lambda key, dtype: torch.from_numpy(np.stack([f[key] for f in features])).to(dtype)  # noqa: E731
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": types,
            "numeric": stack("numeric", torch.float32),
            "numeric_missing": stack("numeric_missing", torch.float32),
            "categorical": stack("categorical", torch.long),
            "labels": stack("labels", torch.float32),
        }

    return collate


def task_model(spec, path: str, cardinalities: list[int], stamps: list):
    """The Trainer's model: the encoder and the default head's MLP, stamping each training forward."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from transformers import AutoModel

    class TaskModel(nn.Module):
        """Encoder, mean pooling, the MLP of shopmtl's default head (its linear paths, well under 1 % of a
        step, left out), the kind's loss."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(path)
            hidden = self.encoder.config.hidden_size
            self.embeddings = nn.ModuleList(
                nn.Embedding(c, min(16, max(2, c))) for c in cardinalities
            )
            width = hidden + 2 * len(spec.numeric) + sum(e.embedding_dim for e in self.embeddings)
            self.head = nn.Sequential(
                nn.Dropout(0.1),
                nn.Linear(width, 256),
                nn.GELU(),
                nn.Dropout(0.1),
                nn.Linear(256, spec.n_outputs),
            )

        def forward(
            self,
            input_ids,
            attention_mask,
            token_type_ids,
            numeric,
            numeric_missing,
            categorical,
            labels=None,
        ):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1).float() / m.sum(1).float().clamp(min=1.0)
            parts = [pooled, numeric, numeric_missing] + [
                e(categorical[:, i]) for i, e in enumerate(self.embeddings)
            ]
            logits = self.head(torch.cat([p.to(pooled.dtype) for p in parts], dim=-1))
            loss = None
            if labels is not None:
                present = ~torch.isnan(labels)
                if spec.kind == "multiclass":
                    loss = F.cross_entropy(logits.float(), labels.reshape(-1).long())
                elif spec.kind == "regression":
                    loss = F.mse_loss(
                        logits.float().reshape(labels.shape)[present], labels[present]
                    )
                else:
                    loss = F.binary_cross_entropy_with_logits(
                        logits.float().reshape(labels.shape)[present], labels[present]
                    )
                if self.training:
                    stamps.append(now())
            return {"loss": loss, "logits": logits}

    return TaskModel()


def training_arguments(plan: dict[str, Any], config, steps: int, bf16: bool, output_dir: str):
    """The Trainer's arguments: shopmtl's optimiser settings, CPU, no saving, logging or evaluation."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=plan["batch_size"],
        max_steps=steps,
        learning_rate=config.training.learning_rate,
        weight_decay=config.training.weight_decay,
        warmup_steps=config.training.warmup_ratio,
        max_grad_norm=config.training.max_grad_norm,
        bf16=bf16,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=config.seed,
    )


def worker_trainers(plan: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``--quick`` only: several Trainer fine-tunes in one process, one after the other."""
    out = []
    for params in runs:
        started = now()
        result = worker_trainer(plan, **params)
        finished = now()
        out.append(
            {**result, "wall_s": finished[0] - started[0], "cpu_s": finished[1] - started[1]}
        )
    return {"per_task": out}
