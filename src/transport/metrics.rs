//! The server's counters, exposed on `/metrics` in the Prometheus text format. Label values
//! come from fixed sets (known routes, tiers, outcomes), never from request data, so a caller
//! cannot grow the label space.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The routes the server answers; anything else is counted as `other`.
pub const ROUTES: [&str; 7] =
    ["/slack/commands", "/slack/events", "/slack/interactions", "/github/webhook", "/healthz", "/metrics", "other"];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route, status) → count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    /// tier → count.
    understood: Mutex<BTreeMap<&'static str, u64>>,
    /// asked, confirmed, cancelled, refused → count.
    confirmations: Mutex<BTreeMap<&'static str, u64>>,
    /// signature, bad_request, slack_api, github_api, delivery, store → count.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    in_flight: AtomicU64,
}

/// The route label of a request path.
pub fn route(path: &str) -> &'static str {
    ROUTES.iter().find(|r| **r == path).copied().unwrap_or("other")
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_default() += 1;
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        {
            let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *m.entry((route, status)).or_default() += 1;
        }
        let secs = took.as_secs_f64();
        let mut m = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = m.entry(route).or_default();
        h.count += 1;
        h.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
    }

    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// `grammar`, `local`, `llm` or `none`.
    pub fn understood(&self, tier: &'static str) {
        bump(&self.understood, tier);
    }

    /// `asked`, `confirmed`, `cancelled` or `refused`.
    pub fn confirmation(&self, outcome: &'static str) {
        bump(&self.confirmations, outcome);
    }

    /// `signature`, `bad_request`, `slack_api`, `github_api`, `delivery` or `store`.
    pub fn error(&self, kind: &'static str) {
        bump(&self.errors, kind);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP lazyops_http_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE lazyops_http_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "lazyops_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP lazyops_http_request_duration_seconds Time to answer an HTTP request.\n");
        out.push_str("# TYPE lazyops_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (le, n) in BUCKETS.iter().zip(h.buckets) {
                let _ =
                    writeln!(out, "lazyops_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "lazyops_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "lazyops_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "lazyops_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        out.push_str("# HELP lazyops_http_requests_in_flight Requests being answered now.\n");
        out.push_str("# TYPE lazyops_http_requests_in_flight gauge\n");
        let _ = writeln!(out, "lazyops_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        counter(&mut out, "lazyops_understood_total", "Messages understood, by tier.", "tier", &self.understood);
        counter(
            &mut out,
            "lazyops_confirmations_total",
            "Confirmations asked and answered, by outcome.",
            "outcome",
            &self.confirmations,
        );
        counter(&mut out, "lazyops_errors_total", "Errors, by kind.", "kind", &self.errors);
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, label: &str, map: &Mutex<BTreeMap<&'static str, u64>>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (k, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = Metrics::default();
        m.request(route("/healthz"), 200, Duration::from_micros(300));
        m.request(route("/nope"), 404, Duration::from_millis(30));
        m.understood("grammar");
        m.confirmation("asked");
        m.error("signature");
        let text = m.render();
        assert!(text.contains("lazyops_http_requests_total{route=\"/healthz\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("lazyops_http_requests_total{route=\"other\",status=\"404\"} 1"), "{text}");
        assert!(text.contains("lazyops_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0005\"} 1"));
        assert!(text.contains("lazyops_http_request_duration_seconds_bucket{route=\"other\",le=\"0.025\"} 0"));
        assert!(text.contains("lazyops_understood_total{tier=\"grammar\"} 1"));
        assert!(text.contains("lazyops_confirmations_total{outcome=\"asked\"} 1"));
        assert!(text.contains("lazyops_errors_total{kind=\"signature\"} 1"));
    }
}
