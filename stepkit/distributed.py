"""Which SageMaker host a step runs on, out of how many: shards and distributed training.

With `sagemaker.processing_instance_count` > 1, the steps that read the raw input each
get a share of its files (ShardedByS3Key) and write their outputs under per-host names,
so that the instances' files land side by side in one S3 prefix. With
`training_instance_count` > 1, preprocess writes each split as that many files (rows
shared out by a hash, `row_shards`), each training instance gets one (ShardedByS3Key),
and a family that distributes (contract `DISTRIBUTED`) trains in one cluster of the hosts: its `cluster(hosts, current)` joins them (XGBoost's
collective, as the SageMaker XGBoost container does), and only the first host (sorted
names, as the container picks its master) writes the model.

SageMaker says who is who in a resource config file (training:
/opt/ml/input/config/resourceconfig.json, processing: /opt/ml/config/resourceconfig.json);
the training toolkit also sets SM_HOSTS and SM_CURRENT_HOST. Locally there is neither:
one host.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINING_RESOURCE_CONFIG = Path("/opt/ml/input/config/resourceconfig.json")
PROCESSING_RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")
LOCAL_HOST = "local"


@dataclass(frozen=True)
class Hosts:
    names: tuple[str, ...]  # sorted, as the SageMaker containers order them
    current: str

    @property
    def many(self) -> bool:
        return len(self.names) > 1

    @property
    def first(self) -> bool:
        """The host that writes what one host must write (the model; the container's master)."""
        return self.current == self.names[0]

    def file_name(self, name: str, suffix: str = ".csv") -> str:
        """`name.csv` on one host; `name-<host>.csv` on several, so their files sit side by side."""
        return f"{name}-{self.current}{suffix}" if self.many else f"{name}{suffix}"


def _from_resource_config(path: Path) -> Hosts | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Hosts(tuple(sorted(config["hosts"])), config["current_host"])


def training_hosts(
    env: Mapping[str, str] = os.environ, config: Path = TRAINING_RESOURCE_CONFIG
) -> Hosts:
    """This training job's hosts: SM_HOSTS (a JSON list) and SM_CURRENT_HOST, else the
    resource config, else this machine alone."""
    if env.get("SM_HOSTS") and env.get("SM_CURRENT_HOST"):
        return Hosts(tuple(sorted(json.loads(env["SM_HOSTS"]))), env["SM_CURRENT_HOST"])
    return _from_resource_config(config) or Hosts((LOCAL_HOST,), LOCAL_HOST)


def processing_hosts(config: Path = PROCESSING_RESOURCE_CONFIG) -> Hosts:
    """This processing job's hosts, from its resource config; locally, this machine alone."""
    return _from_resource_config(config) or Hosts((LOCAL_HOST,), LOCAL_HOST)


def row_shards(frame: Any, count: int) -> Any:
    """Each row's shard in [0, count): a hash of its values (pandas' own, stable across
    runs and machines), so the same row always lands in the same shard."""
    import pandas as pd

    return (pd.util.hash_pandas_object(frame, index=False).to_numpy() % count).astype(int)


def _same(value: Any) -> Any:
    return value


@contextlib.contextmanager
def joined(family: Any, hosts: Hosts) -> Iterator[Callable[[Any], Any]]:
    """Train inside the family's cluster of `hosts` (nothing to join on one host). Yields
    `share(value)`: the first host's value, on every host (what must be fitted once, such
    as the preprocessing, is fitted on the first host's shard and used by all)."""
    if not hosts.many:
        yield _same
        return
    with family.cluster(list(hosts.names), hosts.current) as share:
        yield share
