"""A process encodes only its share of the train rows; everything shared across processes stays whole."""

from __future__ import annotations

import numpy as np
import torch
from conftest import toy_config
from shopmtl.core.data.partition import Shard
from shopmtl.core.data.prepare import prepare_task
from shopmtl.core.data.textbank import TextBank
from shopmtl.core.model.encoder import load_tokenizer
from toy_tasks import TOY_REGRESSION


def test_each_process_encodes_its_share_and_fits_features_on_all_rows(tmp_path):
    config = toy_config(tmp_path / "run")
    tokenizer = load_tokenizer(config.encoder.name)

    def prepared(shard: Shard):
        bank = TextBank(tokenizer, config.encoder.max_length)
        return prepare_task(TOY_REGRESSION, config, bank, shard=shard), bank

    whole, whole_bank = prepared(Shard())
    assert whole.shard.whole and len(whole.rows["train"]) == len(whole.data["train"]) == 240
    shares = [prepared(Shard(i, 3)) for i in range(3)]
    covered = []
    for index, (task, bank) in enumerate(shares):
        mine = Shard(index, 3).rows(240)
        covered.extend(mine.tolist())
        assert task.shard == Shard(index, 3) and len(task.rows["train"]) == 80
        assert task.state == whole.state  # standardisation and vocabularies from every train row
        assert len(task.data["train"]) == 240  # the frame stays whole (baselines, task sizes)
        for split in ("val", "test"):  # evaluation splits val and test itself
            assert len(task.rows[split]) == len(whole.rows[split])
        np.testing.assert_array_equal(task.rows["train"].labels, whole.rows["train"].labels[mine])
        np.testing.assert_array_equal(task.rows["train"].numeric, whole.rows["train"].numeric[mine])
        tokens = bank.pad(task.rows["train"].text_ids)[0]
        assert torch.equal(
            tokens, whole_bank.pad(whole.rows["train"].text_ids[mine])[0]
        )  # the same texts
    assert sorted(covered) == list(range(240))  # 3 shares of 80: every row once
