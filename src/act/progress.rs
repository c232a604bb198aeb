//! Progress of a slow command while it runs (a release checklist ticking off items). The
//! transport that waits for the reply installs a sink around `Bot::handle` (a progress bar
//! in the terminal, a message update in Slack); plugins report steps without knowing who
//! listens, and nothing happens when nobody does.

use std::future::Future;
use std::sync::Arc;

/// `done` of `total` steps are finished; `label` names the last one.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub done: usize,
    pub total: usize,
    pub label: String,
}

pub type Sink = Arc<dyn Fn(&Step) + Send + Sync>;

tokio::task_local! {
    static SINK: Sink;
}

/// Runs `fut` with `sink` receiving the progress reported inside it.
pub async fn with<F: Future>(sink: Sink, fut: F) -> F::Output {
    SINK.scope(sink, fut).await
}

/// Reports a step to whoever listens.
pub fn report(step: &Step) {
    let _ = SINK.try_with(|sink| sink(step));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn steps_reach_the_sink_of_the_surrounding_scope_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let sink: Sink = Arc::new(move |step: &Step| s.lock().unwrap().push(step.done));
        report(&Step { done: 9, total: 9, label: "outside".into() });
        with(sink, async {
            report(&Step { done: 1, total: 2, label: "a".into() });
            report(&Step { done: 2, total: 2, label: "b".into() });
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }
}
