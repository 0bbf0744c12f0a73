"""SageMaker on-demand prices used for cost estimates: a dated table with its source.

Prices are US dollars, region us-east-1, Linux on-demand, no Savings Plan. They change:
update the table and its date together. `mlops.core.cost` says which date it used, so
a stale table shows in every line it produces.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-12-07"
PRICES_REGION = "us-east-1"
PRICES_SOURCE = "https://aws.amazon.com/sagemaker/pricing/ (On-Demand Pricing tab)"
# Read by hand from the page named above: this machine cannot reach it, so the figures were
# not re-checked on the date above. Check them there before quoting a budget.

# USD per instance-hour, by what the instance does (SageMaker prices each use apart).
INSTANCE_HOUR_USD: dict[str, dict[str, float]] = {
    "processing": {
        "ml.t3.medium": 0.05,
        "ml.t3.large": 0.10,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.m5.4xlarge": 0.922,
        "ml.c5.xlarge": 0.204,
        "ml.c5.2xlarge": 0.408,
    },
    "training": {
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.m5.4xlarge": 0.922,
        "ml.c5.xlarge": 0.204,
        "ml.c5.2xlarge": 0.408,
    },
    "hosting": {
        "ml.t2.medium": 0.056,
        "ml.t2.large": 0.111,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.m5.2xlarge": 0.461,
        "ml.c5.large": 0.102,
        "ml.c5.xlarge": 0.204,
    },
}

# Serverless inference: USD per second of compute for each GB of configured memory, and
# per GB of data processed (in plus out).
SERVERLESS_GB_SECOND_USD = 0.00002
SERVERLESS_DATA_GB_USD = 0.016
