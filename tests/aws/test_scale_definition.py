"""Instance counts above one scale the pipeline out: the steps reading the raw input get
their share of its files by S3 key, training runs on several instances with its channels
sharded (the refusals: tests/unit/test_config.py)."""

from __future__ import annotations

import json

from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

from mlops.core.config import load_config
from mlops.core.graph import DATA, load_pipeline


def counts(processing: int, training: int):
    def mutate(raw: dict) -> None:
        raw["sagemaker"].update(
            processing_instance_count=processing, training_instance_count=training
        )

    return mutate


def test_counts_above_one_render_sharded_processing_and_distributed_training(config_file):
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(config_file(counts(3, 2)))
    graph = load_pipeline(cfg)
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    steps = pipeline_steps(json.loads(render_pipeline(cfg, target, graph).definition))
    reads_raw = {s.name for s in graph.steps if any(i.source == DATA for i in s.inputs)}
    assert reads_raw == {"validate", "preprocess"}
    for step in graph.steps:
        if step.kind != "processing":
            continue
        args = steps[step.name]["Arguments"]
        count = args["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        assert count == (3 if step.name in reads_raw else 1), step.name
        spread = {
            i["InputName"]: i["S3Input"]["S3DataDistributionType"]
            for i in args["ProcessingInputs"]
            if "S3Input" in i
        }
        raw = [i.name for i in step.inputs if i.source == DATA]
        for name, how in spread.items():
            assert how == ("ShardedByS3Key" if name in raw else "FullyReplicated"), name
    train = steps["train"]["Arguments"]
    assert train["ResourceConfig"]["InstanceCount"] == 2
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"] if c["ChannelName"] != "code"}
    assert {"train", "validation"} <= set(channels)
    for name in ("train", "validation"):
        source = channels[name]["DataSource"]["S3DataSource"]
        assert source["S3DataDistributionType"] == "ShardedByS3Key"
