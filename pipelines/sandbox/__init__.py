"""The sandbox: a real HTTP server that behaves like both batch-call APIs and simulates the calls."""
