//! test/e2e/common/node.

pub mod downwardapi;
pub mod runtime;

use super::super::Test;

pub fn tests() -> Vec<Test> {
    let mut tests = runtime::tests();
    tests.extend(downwardapi::tests());
    tests
}
