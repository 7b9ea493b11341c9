//! test/e2e/common/node.

pub mod configmap;
pub mod containers;
pub mod downwardapi;
pub mod expansion;
pub mod kubelet;
pub mod kubelet_etc_hosts;
pub mod pod_admission;
pub mod pods;
pub mod runtime;
pub mod secrets;

use super::super::Test;

pub fn tests() -> Vec<Test> {
    let mut tests = runtime::tests();
    tests.extend(pods::tests());
    tests.extend(containers::tests());
    tests.extend(downwardapi::tests());
    tests.extend(configmap::tests());
    tests.extend(secrets::tests());
    tests.extend(expansion::tests());
    tests.extend(kubelet::tests());
    tests.extend(pod_admission::tests());
    tests.extend(pods::websocket_tests());
    tests.extend(kubelet_etc_hosts::tests());
    tests
}
