"""The web console: server-rendered pages over the registry, datasets, jobs and monitoring."""
