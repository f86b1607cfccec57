"""symgrad's benchmarks: each workload runs symgrad and its baselines side by side."""

import os

# OpenMP threads (torch) that spin after each parallel region steal the second core from the
# next system in the round; on a shared 2-core machine that made torch 50x slower. Sleeping
# threads cost the measured system nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
