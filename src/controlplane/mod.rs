//! The local control plane: an in-memory Kubernetes API server for the kubelet tests. Objects
//! live in the store as JSON, under one resourceVersion counter; selectors filter lists and
//! watches.

pub mod selector;
pub mod store;
