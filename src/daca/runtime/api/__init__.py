"""The sidecar's HTTP API v1.0: daprd's paths, status codes, headers and error bodies."""
