"""training_instance_count above one scales training out: preprocess writes each split as
one file per training instance, and the training job runs on that many instances with
its channels shared out by S3 key (the refusals: tests/unit/test_config.py)."""

from __future__ import annotations

import json

from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

from mlops.core.config import load_config
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
