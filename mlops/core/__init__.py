"""Core of the machinery: what both backends share (config, step graph, gate, lineage, the
interfaces each backend implements). It imports no backend."""
