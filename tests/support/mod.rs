//! Helpers shared by integration tests that need a real Cassandra (`mod support;`).
//!
//! `support::cassandra::default_node()` starts the project's local node once per test
//! process with `scripts/cassandra start` and returns how to reach it. Without a node the
//! helpers print a visible `SKIPPED` line and return `None` (the test returns early), except
//! under `CI=true`, where a node that cannot start fails the test: `prereq` holds that rule.
#![allow(dead_code)]

pub(crate) mod cassandra;
#[allow(unused_imports)]
pub(crate) use cassandra::prereq;
pub(crate) mod records;
