"""Subcommands of `mlops`, one module per group; heavy imports happen inside handlers."""
