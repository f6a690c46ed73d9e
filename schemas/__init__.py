"""Shapes of the data: contacts and rejects, provider requests and answers, ledger tables."""
