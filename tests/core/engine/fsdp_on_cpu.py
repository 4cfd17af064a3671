"""Train the toy tasks under FSDP on CPU: a script for ``accelerate launch`` (tests/core/engine/test_fsdp.py).

accelerate 1.15 turns FSDP on only for GPU-family process groups (``AcceleratorState``
sets ``DistributedType.FSDP`` for MULTI_GPU/NPU/XPU/..., never for MULTI_CPU), so on a
machine without a GPU ``accelerate launch --use_fsdp`` silently falls back to DDP. torch's
FSDP2 itself runs on CPU over gloo, so this script builds shopmtl's Accelerator as usual
and then sets accelerate's state to FSDP (version 2) by hand -- the one thing a GPU
cluster's ``accelerate launch --config_file examples/accelerate/fsdp.yaml`` does for
real. Everything after it (prepare, the loop, shopmtl's sharded checkpoints, resume)
is the product's own code path.

    accelerate launch --num_processes 2 tests/core/engine/fsdp_on_cpu.py OUTPUT_DIR [--resume] [--stop-at-draw N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))


class Interrupted(Exception):
    """Raised on every process at the same draw: the run stops as a killed job would."""


#: The shipped cluster config, whose ``fsdp_config`` this script applies (keys renamed as accelerate's plugin takes them).
CLUSTER_CONFIG = TESTS.parent / "examples" / "accelerate" / "fsdp.yaml"
_PLUGIN_KEYS = {
    "fsdp_version": "fsdp_version",
    "fsdp_auto_wrap_policy": "auto_wrap_policy",
    "fsdp_transformer_layer_cls_to_wrap": "transformer_cls_names_to_wrap",
    "fsdp_reshard_after_forward": "reshard_after_forward",
    "fsdp_state_dict_type": "state_dict_type",
    "fsdp_offload_params": "cpu_offload",
    "fsdp_cpu_ram_efficient_loading": "cpu_ram_efficient_loading",
    "fsdp_activation_checkpointing": "activation_checkpointing",
}


def cluster_plugin():
    """accelerate's FSDP plugin with the settings of examples/accelerate/fsdp.yaml."""
    import yaml
    from accelerate.utils import FullyShardedDataParallelPlugin

    settings = yaml.safe_load(CLUSTER_CONFIG.read_text())["fsdp_config"]
    unknown = set(settings) - set(_PLUGIN_KEYS)
    assert not unknown, f"{CLUSTER_CONFIG}: fsdp_config keys this script does not map: {unknown}"
    kwargs = {_PLUGIN_KEYS[key]: value for key, value in settings.items()}
    kwargs["transformer_cls_names_to_wrap"] = [kwargs["transformer_cls_names_to_wrap"]]
    kwargs["auto_wrap_policy"] = kwargs["auto_wrap_policy"].lower()
    return FullyShardedDataParallelPlugin(**kwargs)


def forced_fsdp(make_accelerator):
    """``make_accelerator`` whose Accelerator shards with FSDP2 (the cluster config's settings) even on CPU."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    def make(*args, **kwargs):
        accelerator = make_accelerator(*args, **kwargs)
        accelerator.state.fsdp_plugin = cluster_plugin()
        accelerator.state.distributed_type = PartialState().distributed_type = DistributedType.FSDP
        return accelerator

    return make


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stop-at-draw", type=int)
    parser.add_argument(
        "--ddp", action="store_true", help="leave accelerate's own choice (DDP on CPU)"
    )
    args = parser.parse_args()

    from conftest import toy_config, toy_plugin_set
    from shopmtl.core.engine import trainer
    from shopmtl.core.mtl.sampler import TaskSampler

    if not args.ddp:
        trainer.make_accelerator = forced_fsdp(trainer.make_accelerator)
        real_launch = trainer.launch

        def launch(run):  # say how many FSDP units the cluster config's wrap policy made
            from torch.distributed.fsdp import FSDPModule

            run, model = real_launch(run)
            run.say(f"FSDP units: {sum(isinstance(m, FSDPModule) for m in model.modules())}")
            return run, model

        trainer.launch = launch
    if args.stop_at_draw is not None:
        real_next = TaskSampler.next

        def next_until_interrupted(self):
            if self.draws >= args.stop_at_draw:
                raise Interrupted
            return real_next(self)

        TaskSampler.next = next_until_interrupted
    # 20 steps, checkpoints at 10 and 20: enough for a kill after the first and a resume.
    config = toy_config(args.output_dir, "training.mixed_precision=no", "training.max_steps=20")
    try:
        result = trainer.train(config, toy_plugin_set(), resume=args.resume, progress=False)
    except Interrupted:
        print(f"interrupted at draw {args.stop_at_draw}", flush=True)
        return
    print(f"trained {result.steps} steps, best step {result.best_step}", flush=True)


if __name__ == "__main__":
    main()
