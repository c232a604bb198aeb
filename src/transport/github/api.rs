//! The GitHub REST client (placeholder).

use std::time::Duration;

pub struct GithubApi {
    _http: reqwest::Client,
    _base: String,
    _token: Option<String>,
    _max_wait: Duration,
}

impl GithubApi {
    pub fn new(http: reqwest::Client, base: &str, token: Option<String>, max_wait: Duration) -> GithubApi {
        GithubApi { _http: http, _base: base.to_string(), _token: token, _max_wait: max_wait }
    }
}
