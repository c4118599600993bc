"""Hub-wide settings and plumbing shared by the API, the workers and the CLI."""
