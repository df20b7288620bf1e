"""Real Dapr for this project: daprd and the Dapr CLI built from their Go modules."""
