//! test/e2e/common/node.

pub mod runtime;

use super::super::Test;

pub fn tests() -> Vec<Test> {
    runtime::tests()
}
