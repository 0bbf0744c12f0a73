"""stepkit: the support code step scripts share, kept out of the fork's `model_build/steps/`.

Step scripts run in SageMaker containers where only their bundle exists, so this
package ships inside each bundle that imports it (`stepkit/<module>.py` beside
the script) and imports nothing but the standard library, pandas, numpy and
Great Expectations: never `mlops` or `model_build`.

- `csv_input`: read a CSV file, refusing unusable input with one line saying why;
- `expectations`: load a Great Expectations suite from JSON and run it on a frame;
- `failures`: one failed expectation in words;
- `validation_report`: the report (JSON, Markdown, a table, one summary line).
"""


class UnusableInput(Exception):
    """The input cannot be validated at all; the message is one line saying why."""
