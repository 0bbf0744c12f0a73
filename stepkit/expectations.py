"""Great Expectations plumbing: a suite stored as plain JSON, run on a DataFrame.

A file-backed GX context writes random ids into every suite it saves, so suites
live as JSON without ids and are loaded into one ephemeral context per process.
GX itself is imported only when a suite runs (the import costs seconds), and a
suite GX cannot build is refused loudly instead of losing expectations.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path

import pandas as pd

from stepkit import UnusableInput

EXAMPLES = 5  # example values kept per failed expectation


def load_suite(path: Path) -> dict:
    """A suite JSON file (or the one in a folder) as a dict: a GX object needs the GX import."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise UnusableInput(f"expected one suite .json file in {path}, found {len(found)}")
        path = found[0]
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnusableInput(f"expectation suite not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnusableInput(f"expectation suite {path} is not readable JSON: {exc}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise UnusableInput(f"expectation suite {path} has no 'expectations' list")
    return suite


@functools.cache
def _batch_definition():
    """One ephemeral GX context per process, with a pandas whole-dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("raw").add_dataframe_asset("raw")
    return context, asset.add_batch_definition_whole_dataframe("all rows")


def gx_suite(suite: dict, name: str):
    """A GX suite from its JSON; a bad expectation is UnusableInput, never silently dropped.

    (`gx.ExpectationSuite(**json)` logs and skips an expectation it cannot build.)
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for index, config in enumerate(json.loads(json.dumps(suite["expectations"])), 1):
        try:
            expectations.append(ExpectationConfiguration(**config).to_domain_obj())
        except Exception as exc:  # GX raises several types for a bad configuration
            reason = " ".join(str(exc).split())
            kind = config.get("type") if isinstance(config, dict) else None
            raise UnusableInput(
                f"expectation suite {suite.get('name', '')!r}: expectation {index} ({kind}) "
                f"is not valid: {reason}"
            ) from None
    return gx.ExpectationSuite(**{**suite, "name": name, "expectations": expectations})


def _run_gx(df: pd.DataFrame, suite: dict, parameters: dict, result_format: dict | str) -> dict:
    import great_expectations as gx
    from great_expectations.exceptions import SuiteParameterError

    context, batch_definition = _batch_definition()
    name = f"{suite.get('name', 'suite')}-{uuid.uuid4().hex[:8]}"
    gx_suite_ = context.suites.add(gx_suite(suite, name))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite_)
    )
    order = {e.id: i for i, e in enumerate(gx_suite_.expectations)}
    try:
        result = definition.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=parameters,
            result_format=result_format,
        ).to_json_dict()
    except SuiteParameterError as exc:
        raise UnusableInput(
            f"expectation suite {suite.get('name', '')!r}: {exc}; this validator supplies "
            f"{sorted(parameters)}"
        ) from None
    finally:
        context.validation_definitions.delete(name)
        context.suites.delete(name)
    # GX reports in its own order; the suite's order reads better (table checks first).
    result["results"].sort(key=lambda r: order.get(r["expectation_config"].get("id"), len(order)))
    return result


def run_suite(df: pd.DataFrame, suite: dict, parameters: dict) -> dict:
    """The GX result (as JSON) of `suite` on `df`; details are computed only when something fails.

    A pass needs only booleans, which is the cheap result format; on failure the
    suite runs again with counts and example values. `parameters` are the values
    of the suite's `{"$PARAMETER": ...}` references.
    """
    result = _run_gx(df, suite, parameters, "BOOLEAN_ONLY")
    if result["success"]:
        return result
    return _run_gx(
        df, suite, parameters, {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    )


def run_suite_with_counts(df: pd.DataFrame, suite: dict, parameters: dict) -> dict:
    """The GX result with counts and examples whatever the verdict: a part of a data set,
    to be merged with the others (stepkit.validation_merge)."""
    return _run_gx(
        df, suite, parameters, {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    )
