//! Benchmarks of the admin link; filled in below.
fn main() {}
