//! Shared helpers for the integration tests and the benchmark harness.
