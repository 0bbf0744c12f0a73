"""The AWS names a project's model package group is spelled into, with each one's limit, so
that a group too long for one of them is refused when the config loads instead of when a
deploy creates the resource (a 63-character group used to pass config and bootstrap and
break the first monitoring stack).

The shapes are the deploy's own (mlops/sagemaker/*.py, model_deploy/*.yml);
tests/aws/test_name_lengths.py checks each one against the code or template that builds it.
"""

from __future__ import annotations

# mlops.core.stages.STAGES (which imports config.py, which calls this: no import back)
STAGES = ("staging", "prod")
# The versions a group's names leave room for: model versions up to 4 digits.
MAX_VERSION = 9999
DEFINITION_ID = "0" * 8  # monitor.py: 8 hex characters of the baseline's digest


def derived_names(group: str) -> list[tuple[str, str, int]]:
    """(what, the longest name, SageMaker's or CloudFormation's limit) for `group`."""
    names = [("model package group", group, 63)]
    for stage in STAGES:
        endpoint = f"{group}-{stage}"
        names += [
            ("endpoint", endpoint, 63),
            ("monitoring schedule", f"{endpoint}-data-quality", 63),
            ("data quality job definition", f"{endpoint}-dq-v{MAX_VERSION}-{DEFINITION_ID}", 63),
            ("monitoring stack", f"{endpoint}-monitoring", 128),
        ]
    names += [
        ("batch model", f"{group}-v{MAX_VERSION}-batch", 63),
        ("pipeline", f"{group}-pipeline", 256),
    ]
    return names


def longest_group(group: str = "g") -> int:
    """The longest group every derived name has room for."""
    return min(limit - (len(name) - len(group)) for _, name, limit in derived_names(group))


def name_length_error(group: str) -> str | None:
    """One line naming the first derived name over its limit, and the longest group that fits."""
    for what, name, limit in derived_names(group):
        if len(name) > limit:
            return (
                f"model_package_group {group!r} ({len(group)} characters) is too long: the "
                f"{what} name {name!r} would be {len(name)} characters, over the limit of "
                f"{limit}; use at most {longest_group()} characters"
            )
    return None
