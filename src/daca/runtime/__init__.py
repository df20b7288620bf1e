"""A Dapr-compatible local runtime: daprd's HTTP API v1.0 over pluggable state and pub/sub backends.

It knows nothing about chat or memory. See docs/runtime.md for what it implements and where it
differs from daprd.
"""
