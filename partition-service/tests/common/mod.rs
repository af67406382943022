//! Shared set-up for the partition service's scenario tests: the in-memory "serve and log in"
//! fixture of `tessera-tests`, under the name these tests have always used (`mod common;`).

#![allow(unused_imports, unreachable_pub)]

pub use tessera_tests::partition::*;
