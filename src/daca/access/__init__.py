"""Who may call the services: local mode (loopback only, no cross-site requests) or production
mode (bearer tokens bind the user; the memory service serves only its sidecar)."""
