"""What the services tell an operator: Prometheus metrics (``metrics``)."""
