//! Sign-in lockout: after `max_failures` wrong passwords for one account name within
//! `window_seconds`, the account refuses sign-in (even the right password) until the
//! oldest of those failures leaves the window. The store counts the failures atomically;
//! this is the arithmetic, with time passed in.

use crate::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub max_failures: usize,
    pub window_seconds: i64,
}

impl Lockout {
    /// Failures after this time count.
    pub fn counted_since(&self, now: UnixTime) -> UnixTime {
        now - self.window_seconds
    }

    /// Seconds until a locked account opens again, given its counted failures, newest
    /// first (at least `max_failures` of them): when the `max_failures`-th newest
    /// leaves the window. At least 1.
    pub fn retry_after(&self, failures_newest_first: &[UnixTime], now: UnixTime) -> i64 {
        let oldest_counted = failures_newest_first
            .get(self.max_failures.saturating_sub(1))
            .or(failures_newest_first.last())
            .copied()
            .unwrap_or(now);
        (oldest_counted + self.window_seconds - now).max(1)
    }

    /// Whether one more failure, after `counted` failures already in the window, locks
    /// the account (the moment to raise `ACCOUNT_LOCKED`, once).
    pub fn locks_with_next(&self, counted: usize) -> bool {
        counted + 1 == self.max_failures
    }

    /// Until when a lock raised now holds, at the latest.
    pub fn locked_until(&self, now: UnixTime) -> UnixTime {
        now + self.window_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKOUT: Lockout = Lockout {
        max_failures: 3,
        window_seconds: 600,
    };

    #[test]
    fn the_lock_opens_when_the_oldest_counted_failure_leaves_the_window() {
        // Failures at 1000, 1100, 1200 (newest first), asked at 1250.
        let failures = [1200, 1100, 1000];
        assert_eq!(LOCKOUT.retry_after(&failures, 1250), 1000 + 600 - 1250);
        // A fourth, older failure does not lengthen the lock.
        assert_eq!(
            LOCKOUT.retry_after(&[1200, 1100, 1000, 900], 1250),
            1000 + 600 - 1250
        );
        // Never less than a second, even at the edge.
        assert_eq!(LOCKOUT.retry_after(&failures, 1600), 1);
        assert_eq!(LOCKOUT.counted_since(1250), 650);
    }

    #[test]
    fn the_failure_that_reaches_the_limit_is_the_one_that_locks() {
        assert!(!LOCKOUT.locks_with_next(0));
        assert!(!LOCKOUT.locks_with_next(1));
        assert!(LOCKOUT.locks_with_next(2));
        assert!(!LOCKOUT.locks_with_next(3));
        assert_eq!(LOCKOUT.locked_until(1000), 1600);
    }
}
