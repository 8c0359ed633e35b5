"""The application services every edge shares (the API, the dashboard, the CLI and the workers):
the online recommendation engine, identity and erasure, experiments and decision points,
messaging, the Segment mapping and API-key authentication. Nothing here imports FastAPI."""
