//! Exponential delay before retrying failed writes (the API server may be failing on
//! purpose: the sandbox injects faults).

use std::time::Duration;

use tokio::time::Instant;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct RetryDelay {
    failures: u32,
    deadline: Option<Instant>,
}

impl RetryDelay {
    /// Work succeeded: the next failure starts again at the first delay.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.deadline = None;
    }

    /// Work failed: arm the timer, doubling the delay each consecutive failure.
    pub fn schedule(&mut self) {
        let delay = FIRST_DELAY
            .saturating_mul(2u32.saturating_pow(self.failures))
            .min(MAX_DELAY);
        self.failures = self.failures.saturating_add(1);
        self.deadline = Some(Instant::now() + delay);
    }

    /// Completes when the armed delay is over (never when nothing is armed).
    pub async fn elapsed(&mut self) {
        match self.deadline {
            Some(deadline) => {
                tokio::time::sleep_until(deadline).await;
                self.deadline = None;
            }
            None => std::future::pending().await,
        }
    }
}
