"""Tooling around the services: the CLI, the dev supervisor and the local infrastructure."""
