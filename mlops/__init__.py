"""The machinery of the template: CLI, step graph, local runner, registries, serving, deploy."""
