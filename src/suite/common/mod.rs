//! Upstream's common node e2e suites (kubernetes/kubernetes test/e2e/common), ported one file
//! per upstream file: each test keeps upstream's full name, character for character, and
//! states its pod, what it waits for and what it expects; the expectation is a pure function
//! of the pod's recorded status, unit tested with right and wrong ones.

pub mod exec;
pub mod kit;
pub mod node;
pub mod output;
pub mod version;

use super::Test;

/// Every ported test of the common suites.
pub fn tests() -> Vec<Test> {
    node::tests()
}
