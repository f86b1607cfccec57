"""symgrad's benchmarks: each workload runs symgrad and its baselines side by side."""
