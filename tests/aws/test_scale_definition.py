"""Instance counts above one scale out: training_instance_count has preprocess write each split
as one file per training instance, and the training job runs on that many instances with
its channels shared out by S3 key (the refusals: tests/unit/test_config.py);
processing_instance_count runs the steps that read the raw input on that many instances,
each on its share of the files, and merges their results on one (the steps themselves on
three shards: tests/unit/test_sharded_processing.py)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.graph import load_pipeline


def test_training_instances_render_a_distributed_job_on_sharded_channels(config_file):
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(config_file(lambda raw: raw["sagemaker"].update(training_instance_count=3)))
    graph = load_pipeline(cfg)
    assert graph.step("preprocess").arguments[-2:] == ("--shards", "3")
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    steps = pipeline_steps(json.loads(render_pipeline(cfg, target, graph).definition))
    train = steps["train"]["Arguments"]
    assert train["ResourceConfig"]["InstanceCount"] == 3
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    for name in ("train", "validation"):
        source = channels[name]["DataSource"]["S3DataSource"]
        assert source["S3DataDistributionType"] == "ShardedByS3Key", name
    assert "--shards" in steps["preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    for step in graph.steps:
        if step.kind == "processing":
            resources = steps[step.name]["Arguments"]["ProcessingResources"]
            assert resources["ClusterConfig"]["InstanceCount"] == 1


def test_processing_instances_shard_the_raw_input_of_validate_and_preprocess(config_file):
    """processing_instance_count 3: validate and preprocess run on 3 instances, each on its
    share of the raw input's files (ShardedByS3Key); each is followed by its merge on one
    instance, which the next step waits for; every other step runs on one instance."""
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(config_file(lambda raw: raw["sagemaker"].update(processing_instance_count=3)))
    graph = load_pipeline(cfg)
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    steps = pipeline_steps(json.loads(render_pipeline(cfg, target, graph).definition))
    order = ["validate", "validate_merge", "preprocess", "preprocess_merge", "train", "evaluate"]
    assert [s.name for s in graph.steps] == order
    for before, after in itertools.pairwise(order):
        assert steps[after]["DependsOn"] == [before]
    assert graph.baseline == "preprocess_merge.baseline"
    counts = {
        name: steps[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        for name in order
        if steps[name]["Type"] == "Processing"
    }
    assert counts == {"validate": 3, "validate_merge": 1, "preprocess": 3,
                      "preprocess_merge": 1, "evaluate": 1}  # fmt: skip
    for name in order:
        if steps[name]["Type"] != "Processing":
            continue
        arguments = steps[name]["Arguments"]
        for inp in arguments["ProcessingInputs"]:
            sharded = name in ("validate", "preprocess") and inp["InputName"] == "raw"
            distribution = inp["S3Input"]["S3DataDistributionType"]
            assert distribution == ("ShardedByS3Key" if sharded else "FullyReplicated"), name
        argv = arguments["AppSpecification"]["ContainerArguments"]
        assert ("--part" in argv) == (name in ("validate", "preprocess")), name
        assert ("--merge" in argv) == name.endswith("_merge"), name
    validate_argv = steps["validate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert "--max-quarantined-pct" not in validate_argv  # row quarantine is off on shards
    merge_inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"]
        for i in steps["preprocess_merge"]["Arguments"]["ProcessingInputs"]
    }
    assert merge_inputs["parts"] == {
        "Get": "Steps.preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"
    }


def test_processing_instances_no_step_can_use_are_refused(config_file):
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(config_file(lambda raw: raw["sagemaker"].update(processing_instance_count=2)))
    graph = load_pipeline(cfg)
    single = replace(graph, steps=tuple(replace(s, scale_out=False) for s in graph.steps))
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    with pytest.raises(UsageError, match=r"processing_instance_count: 2 instances refused: use 1"):
        render_pipeline(cfg, target, single)
