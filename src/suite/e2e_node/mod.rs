//! Upstream's node e2e suite (kubernetes/kubernetes test/e2e_node), the tests tagged
//! NodeConformance that exist only there, ported one file per upstream file, under upstream's
//! full names.

pub mod container_lifecycle;
pub mod deleted_pods;
pub mod log_path;
pub mod pod_hostnamefqdn;
pub mod pods_lifecycle_termination;

use super::Test;

/// Every ported test of test/e2e_node.
pub fn tests() -> Vec<Test> {
    let mut tests = Vec::new();
    tests.extend(pod_hostnamefqdn::tests());
    tests.extend(log_path::tests());
    tests.extend(deleted_pods::tests());
    tests.extend(pods_lifecycle_termination::tests());
    tests.extend(container_lifecycle::tests());
    tests
}
