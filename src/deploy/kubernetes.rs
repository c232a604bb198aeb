//! Versions from Kubernetes: the image tag of a Deployment's container, read from the API
//! server over HTTPS with a bearer token, trusting only the cluster's CA when one is given.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Deployed, VersionError, parse_time};

pub struct Target<'a> {
    pub api_url: &'a str,
    pub token: String,
    /// PEM of the cluster CA.
    pub ca_pem: Option<Vec<u8>>,
    pub namespace: &'a str,
    pub deployment: &'a str,
    pub container: Option<&'a str>,
    pub timeout: Duration,
}

/// Reads `env:NAME`, `file:PATH` (relative to the config) or a literal token.
pub fn secret(value: &str, root: &Path) -> Result<String, VersionError> {
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var)
            .map_err(|_| VersionError::Kubernetes(format!("environment variable `{var}` (the token) is not set")));
    }
    if let Some(path) = value.strip_prefix("file:") {
        let p = root.join(path);
        return std::fs::read_to_string(&p)
            .map(|t| t.trim().to_string())
            .map_err(|e| VersionError::Kubernetes(format!("cannot read the token file `{path}`: {e}")));
    }
    Ok(value.to_string())
}

/// `registry:5000/team/app:v1.4.0` → `v1.4.0`; a digest is shortened; no tag is `latest`.
pub fn image_tag(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.chars().take(19).collect();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

fn client(t: &Target<'_>) -> Result<reqwest::Client, VersionError> {
    let mut b = reqwest::Client::builder()
        .timeout(t.timeout)
        .connect_timeout(t.timeout)
        .user_agent(concat!("lazyops/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &t.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| VersionError::Kubernetes(format!("the cluster CA is not a PEM certificate: {e}")))?;
        b = b.tls_certs_only(certs);
    }
    b.build().map_err(|e| VersionError::Kubernetes(format!("cannot build an HTTPS client: {e}")))
}

pub async fn read(t: &Target<'_>) -> Result<Deployed, VersionError> {
    let base = t.api_url.trim_end_matches('/');
    let url = format!("{base}/apis/apps/v1/namespaces/{}/deployments/{}", t.namespace, t.deployment);
    let secs = t.timeout.as_secs();
    let resp = client(t)?
        .get(&url)
        .bearer_auth(&t.token)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| super::http::request_error(&url, secs, &e))?;
    let status = resp.status();
    let body = super::http::body(&url, secs, resp).await?;
    let json: Value = serde_json::from_str(&body).map_err(|_| {
        VersionError::Kubernetes(format!("the API server's answer for {} is not JSON", crate::redact::redact(&url)))
    })?;
    if !status.is_success() {
        // Errors come as a `Status` object with a message.
        let message = json.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(VersionError::Kubernetes(match status.as_u16() {
            404 => format!("deployment `{}/{}` not found: {message}", t.namespace, t.deployment),
            401 | 403 => format!("the API server refused the token ({status}): {message}"),
            _ => format!("the API server answered {status}: {message}"),
        }));
    }
    let containers = json
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .ok_or_else(|| VersionError::Kubernetes("the deployment has no containers".into()))?;
    let container = match t.container {
        Some(name) => {
            containers.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(name)).ok_or_else(|| {
                VersionError::Kubernetes(format!("deployment `{}` has no container `{name}`", t.deployment))
            })?
        }
        None => {
            containers.first().ok_or_else(|| VersionError::Kubernetes("the deployment has no containers".into()))?
        }
    };
    let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
    let conditions = json.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let progressing = conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Progressing"));
    let when = progressing
        .and_then(|c| c.get("lastUpdateTime"))
        .or_else(|| json.pointer("/metadata/creationTimestamp"))
        .and_then(Value::as_str)
        .and_then(parse_time);
    let int = |p: &str| json.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let revision = json
        .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .map(|r| format!(", revision {r}"))
        .unwrap_or_default();
    Ok(Deployed {
        version: image_tag(image),
        source: format!("image of deployment {}/{} ({image})", t.namespace, t.deployment),
        commit: None,
        deployed_at: when,
        history: Vec::new(),
        detail: Some(format!("{}/{} replicas ready{revision}", int("/status/readyReplicas"), int("/spec/replicas"))),
    })
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags_are_read_past_registry_ports_and_digests() {
        assert_eq!(image_tag("registry:5000/team/payments:v1.4.0"), "v1.4.0");
        assert_eq!(image_tag("payments"), "latest");
        assert_eq!(image_tag("registry:5000/payments"), "latest");
        assert_eq!(image_tag("payments@sha256:0123456789abcdef0123"), "sha256:0123456789ab");
    }
}
