//! Service cluster IPs, as kube-apiserver 1.20 allocates them (pkg/registry/core/service
//! storage/rest.go and ipallocator): a Service that is not ExternalName and names no
//! `clusterIP` gets a random free address of the service CIDR; one it names must lie in the
//! CIDR and be free; `clusterIPs` repeats `clusterIP` (`None` for a headless Service). The
//! kubelet gives every pod the `<NAME>_SERVICE_HOST`/`_PORT` variables of the Services of its
//! namespace that have a cluster IP (pkg/kubelet/envvars), so a Service without one is
//! invisible to pods.
//!
//! The CIDR is 10.96.0.0/16, as the reference kube-apiserver is run with; its first address
//! is kept for the `kubernetes` Service, as kube-apiserver keeps it.

use std::net::Ipv4Addr;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::selector::Selector;
use super::store::Store;
use super::validation::Cause;

/// The service CIDR: network address and prefix length.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 16);

/// Holds allocation and the store's create together, so two Services never get one address.
static ALLOCATING: Mutex<()> = Mutex::new(());

/// Whether `ip` may be a Service's: in the CIDR, neither its network nor its broadcast
/// address, nor the `kubernetes` Service's first address.
fn in_range(ip: Ipv4Addr) -> bool {
    let (net, bits) = SERVICE_CIDR;
    let mask = u32::MAX << (32 - u32::from(bits));
    let (ip, net) = (u32::from(ip), u32::from(net));
    ip & mask == net && ip != net && ip != net | !mask
}

fn range_text() -> String {
    format!("{}/{}", SERVICE_CIDR.0, SERVICE_CIDR.1)
}

/// The addresses the Services in `store` hold.
fn taken(store: &Store) -> std::collections::HashSet<Ipv4Addr> {
    let (items, _) = store.list("services", None, &Selector::default());
    let mut held: std::collections::HashSet<Ipv4Addr> = items
        .iter()
        .filter_map(|s| serde_json::from_str::<Value>(s).ok())
        .filter_map(|s| s.pointer("/spec/clusterIP")?.as_str()?.parse().ok())
        .collect();
    held.insert(first());
    held
}

/// The `kubernetes` Service's address: the CIDR's first.
pub fn first() -> Ipv4Addr {
    Ipv4Addr::from(u32::from(SERVICE_CIDR.0) + 1)
}

/// A random free address of the CIDR, or `None` when all are taken.
fn pick(held: &std::collections::HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let (net, bits) = SERVICE_CIDR;
    let size = 1u32 << (32 - u32::from(bits));
    let start = rand_offset(size);
    (0..size)
        .map(|i| Ipv4Addr::from(u32::from(net) + (start + i) % size))
        .find(|ip| in_range(*ip) && !held.contains(ip))
}

fn rand_offset(size: u32) -> u32 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % size
}

/// The 422 cause kube-apiserver gives for an address it cannot allocate.
fn cannot_allocate(ip: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: "spec.clusterIPs".into(),
        message: format!(
            "Invalid value: []string{{\"{ip}\"}}: failed to allocated ip:{ip} with error:{why}"
        ),
    }
}

/// Gives a Service being created its cluster IP and `clusterIPs`, then runs `create` while no
/// other Service can take the address. `Err` is the cause of a 422.
pub fn allocate_and<T>(
    store: &Store,
    obj: &mut Value,
    create: impl FnOnce(&mut Value) -> T,
) -> Result<T, Cause> {
    let _held = ALLOCATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(create(obj));
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(create(obj));
    }
    let asked = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ip = match asked.as_str() {
        "" => pick(&taken(store))
            .ok_or_else(|| cannot_allocate("", "range is full"))?
            .to_string(),
        "None" => asked,
        given => {
            let parsed: Ipv4Addr = given
                .parse()
                .map_err(|_| cannot_allocate(given, "provided IP is not in the valid range"))?;
            if !in_range(parsed) && parsed != first() {
                return Err(cannot_allocate(
                    given,
                    &format!(
                        "provided IP is not in the valid range. The range of valid IPs is {}",
                        range_text()
                    ),
                ));
            }
            if taken(store).contains(&parsed) {
                return Err(cannot_allocate(given, "provided IP is already allocated"));
            }
            asked
        }
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    Ok(create(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: Value) -> Value {
        json!({"metadata": {"name": "s", "namespace": "default"}, "spec": spec})
    }

    fn create(store: &Store, spec: Value) -> Result<Value, Cause> {
        let mut obj = service(spec);
        let name = uuid::Uuid::new_v4().simple().to_string();
        obj["metadata"]["name"] = json!(name);
        allocate_and(store, &mut obj, |o| {
            let _ = store.create("services", "default", o.clone(), false);
            o.clone()
        })
    }

    #[test]
    fn a_service_gets_a_free_address_of_the_range() {
        let store = Store::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let s = create(&store, json!({"ports": [{"port": 80}]})).unwrap();
            let ip: Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
            assert!(in_range(ip), "{ip}");
            assert_ne!(ip, first());
            assert!(seen.insert(ip), "{ip} given twice");
            assert_eq!(s["spec"]["clusterIPs"], json!([ip.to_string()]));
        }
    }

    #[test]
    fn a_named_address_must_be_in_range_and_free() {
        let store = Store::new();
        let s = create(&store, json!({"clusterIP": "10.96.7.7"})).unwrap();
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.96.7.7"]));
        let again = create(&store, json!({"clusterIP": "10.96.7.7"})).unwrap_err();
        assert!(
            again.message.ends_with("provided IP is already allocated"),
            "{}",
            again.message
        );
        let out = create(&store, json!({"clusterIP": "1.2.3.4"})).unwrap_err();
        assert_eq!(
            out.to_string(),
            "spec.clusterIPs: Invalid value: []string{\"1.2.3.4\"}: failed to allocated \
             ip:1.2.3.4 with error:provided IP is not in the valid range. The range of valid \
             IPs is 10.96.0.0/16"
        );
        let kubernetes = create(&store, json!({"clusterIP": "10.96.0.1"})).unwrap_err();
        assert!(kubernetes.message.contains("already allocated"));
        let headless = create(&store, json!({"clusterIP": "None"})).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let external = create(
            &store,
            json!({"type": "ExternalName", "externalName": "x.io"}),
        )
        .unwrap();
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn the_range_excludes_its_network_and_broadcast_addresses() {
        assert!(!in_range(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(!in_range(Ipv4Addr::new(10, 96, 255, 255)));
        assert!(in_range(Ipv4Addr::new(10, 96, 255, 254)));
        assert!(!in_range(Ipv4Addr::new(10, 97, 0, 5)));
    }
}
