//! test/e2e/common/node.

pub mod configmap;
pub mod downwardapi;
pub mod expansion;
pub mod kubelet;
pub mod kubelet_etc_hosts;
pub mod pods;
pub mod runtime;
pub mod secrets;

use super::super::Test;

pub fn tests() -> Vec<Test> {
    let mut tests = runtime::tests();
    tests.extend(downwardapi::tests());
    tests.extend(configmap::tests());
    tests.extend(secrets::tests());
    tests.extend(expansion::tests());
    tests.extend(kubelet::tests());
    tests.extend(pods::websocket_tests());
    tests.extend(kubelet_etc_hosts::tests());
    tests
}
