//! Test-only package: the suite lives in `refund/`, the test that runs it in `tests/`.
