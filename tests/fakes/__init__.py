"""Fakes at the test boundaries (a fake OpenAI-compatible server, ...)."""
