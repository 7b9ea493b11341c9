//! Image pulls, for containers of pull policy Always whose image names a registry: the
//! manifest is fetched (plain HTTP from 127.0.0.1 and localhost, HTTPS elsewhere, as
//! containerd's CRI does), with HTTP Basic credentials of the pod's image pull Secrets for its
//! host. Nothing is stored: a container of a pulled image runs the workload binary, as the
//! harness's test image does. Enough to show the image pull tests can tell a pull that fails
//! from one that does not.

use base64::Engine;
use serde_json::Value;

use crate::api::Api;

/// (registry host, `Authorization` header value) from a pod's image pull Secrets.
pub type Auths = Vec<(String, String)>;

/// The credentials of the `kubernetes.io/dockerconfigjson` Secrets `names` of namespace `ns`;
/// a Secret that cannot be read or parsed gives none, as the kubelet goes on without it.
pub fn auths(api: &Api, ns: &str, names: &[String]) -> Auths {
    let mut out = Vec::new();
    for name in names {
        let Ok((200, secret)) = api.get(&format!("/api/v1/namespaces/{ns}/secrets/{name}")) else {
            continue;
        };
        let Some(config) = secret
            .pointer("/data/.dockerconfigjson")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        for (host, entry) in config["auths"].as_object().into_iter().flatten() {
            if let Some(auth) = entry["auth"].as_str() {
                out.push((host.clone(), format!("Basic {auth}")));
            }
        }
    }
    out
}

/// `host/repository:tag` split, when the first component names a registry host.
fn reference(image: &str) -> Option<(&str, &str, &str)> {
    let (host, rest) = image.split_once('/')?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return None;
    }
    let (repository, tag) = rest.rsplit_once(':').unwrap_or((rest, "latest"));
    Some((host, repository, tag))
}

/// Pulls `image` when it names a registry: `Ok(Some(imageID))`, `<host>/<repository>@<digest>`
/// as containerd reports it; `Ok(None)` for an image without a registry host; `Err` says why
/// the pull failed, as a runtime's ErrImagePull message would.
pub fn pull(image: &str, auths: &Auths) -> Result<Option<String>, String> {
    let Some((host, repository, tag)) = reference(image) else {
        return Ok(None);
    };
    let scheme = if host.starts_with("127.0.0.1:") || host.starts_with("localhost") {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}/v2/{repository}/manifests/{tag}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent
        .get(&url)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json");
    if let Some((_, auth)) = auths.iter().find(|(h, _)| h == host) {
        request = request.header("Authorization", auth);
    }
    let response = request
        .call()
        .map_err(|e| format!("failed to pull image {image:?}: GET {url}: {e}"))?;
    let digest = response
        .headers()
        .get("docker-content-digest")
        .and_then(|d| d.to_str().ok())
        .ok_or_else(|| format!("failed to pull image {image:?}: no Docker-Content-Digest"))?;
    Ok(Some(format!("{host}/{repository}@{digest}")))
}
