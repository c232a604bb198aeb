//! Response bodies read with a cap. A version endpoint, a Kubernetes API server, a CI service
//! or Reddit that answers with an endless or huge body would otherwise be read into memory
//! until the process runs out of it; every body lazyops reads from a server it does not run
//! goes through [`read`], which stops at [`MAX_BODY`] with an error that says so.

/// The most any answer may hold: far above a version document, a Deployment object, a page
/// of GitHub releases or a Reddit listing.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {} MiB, the most lazyops reads", MAX_BODY / (1024 * 1024))]
    TooLarge,
    #[error("the answer did not arrive in time")]
    Timeout,
    #[error("the answer broke off ({0})")]
    Broken(String),
}

/// The body, or `TooLarge` as soon as it passes `MAX_BODY` (at once when `Content-Length`
/// says so), without reading the rest.
pub async fn read(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            // Without the URL: it may carry credentials, and the caller names the request.
            Err(e) => return Err(BodyError::Broken(e.without_url().to_string())),
        }
    }
}

/// The body as text (invalid UTF-8 replaced), capped like [`read`].
pub async fn text(resp: reqwest::Response) -> Result<String, BodyError> {
    read(resp).await.map(|b| String::from_utf8_lossy(&b).into_owned())
}
