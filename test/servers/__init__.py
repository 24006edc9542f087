"""Loopback test servers (S3-shaped, fault-injecting) for knoxpy's tests and benchmarks."""
