//! The failed-login lockout IMAP and POP3 share: after repeated failures a login is
//! refused for a while without looking at the password.
//!
//! Three counters, each over a sliding window (`window_secs`):
//! - per (address, user) pair, at a low threshold: one client guessing one password;
//! - per address, any user, at a higher one: one client trying many users (password
//!   spraying). Loopback is exempt, because a webmail or a proxy on the same host
//!   brings every user's logins from 127.0.0.1 and one typo-prone user must not lock
//!   out the rest;
//! - per user, any address, at a much higher one: a password guessed from many
//!   addresses. This is the one an attacker could abuse to lock a user out from
//!   everywhere, so it never refuses an address that logged in as that user in the
//!   last [`TRUST_TTL`]: the user's own devices keep working while strangers wait.
//!
//! IPv6 addresses are counted by their /64, the smallest block a host usually gets, so
//! cycling through one's own addresses does not reset anything. A refused attempt does
//! not count as a failure (the lock does not grow while it is hit).
//!
//! The state is in this process only: with several nodes each keeps its own counters,
//! which multiplies the thresholds by the node count but never locks anyone out more.
//! Every table is bounded ([`MAX_TRACKED`]); when full, the least recently used entry
//! goes.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The `[auth]` section of the configuration: when failed logins lock out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginGuardOptions {
    /// Failed logins for one user from one address (an IPv6 /64) within `window_secs`
    /// after which that pair is refused for `lockout_secs`. 0 turns this off.
    /// Default: 10.
    pub max_failures_per_pair: u32,
    /// Failed logins from one address, for any users, after which the address is
    /// refused. Loopback addresses are never refused by this one. 0 turns it off.
    /// Default: 50.
    pub max_failures_per_ip: u32,
    /// Failed logins for one user, from any address, after which the user is refused
    /// from every address that has not logged in as that user successfully in the
    /// last 30 days. 0 turns it off. Default: 100.
    pub max_failures_per_user: u32,
    /// The window over which failures are counted, in seconds (at most 30 days).
    /// Default: 900.
    pub window_secs: u64,
    /// How long a lockout lasts, in seconds (at most 30 days). Default: 900.
    pub lockout_secs: u64,
}

impl Default for LoginGuardOptions {
    fn default() -> Self {
        LoginGuardOptions {
            max_failures_per_pair: 10,
            max_failures_per_ip: 50,
            max_failures_per_user: 100,
            window_secs: 900,
            lockout_secs: 900,
        }
    }
}

/// How long a successful login keeps its address trusted for that user.
pub const TRUST_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest window or lockout: larger settings are cut to this, so that adding one
/// to a clock reading can never overflow.
const MAX_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most entries any one table holds.
const MAX_TRACKED: usize = 100_000;
/// The most trusted addresses remembered per user (the most recent win).
const MAX_TRUSTED_PER_USER: usize = 16;

/// Which counter refused a login; for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Pair,
    Address,
    User,
}

impl LockScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Pair => "pair",
            LockScope::Address => "address",
            LockScope::User => "user",
        }
    }
}

/// An address as counted: IPv4 (IPv4-mapped IPv6 included) whole, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddressKey(IpAddr);

impl AddressKey {
    fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                AddressKey(IpAddr::V6(prefix.into()))
            }
            v4 => AddressKey(v4),
        }
    }
}

/// Recent failures of one key, and the lock they caused.
#[derive(Debug, Default)]
struct Counter {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    last_seen: Option<Instant>,
}

impl Counter {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Adds a failure; returns whether this one started a lock.
    fn fail(&mut self, now: Instant, max: u32, window: Duration, lockout: Duration) -> bool {
        self.last_seen = Some(now);
        while self
            .failures
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() >= max as usize {
            self.failures.clear();
            self.locked_until = Some(now + lockout);
            return true;
        }
        false
    }

    /// Whether the entry still matters: locked, or holding failures in the window.
    fn live(&self, now: Instant, window: Duration) -> bool {
        self.locked(now)
            || self
                .failures
                .back()
                .is_some_and(|&t| now.duration_since(t) < window)
    }
}

/// One table of counters, bounded in size.
#[derive(Debug)]
struct Counters<K>(HashMap<K, Counter>);

impl<K: std::hash::Hash + Eq + Clone> Counters<K> {
    fn locked(&self, key: &K, now: Instant) -> bool {
        self.0.get(key).is_some_and(|c| c.locked(now))
    }

    fn entry(&mut self, key: K, now: Instant, window: Duration) -> &mut Counter {
        if !self.0.contains_key(&key) && self.0.len() >= MAX_TRACKED {
            self.0.retain(|_, c| c.live(now, window));
            if self.0.len() >= MAX_TRACKED {
                let oldest = self
                    .0
                    .iter()
                    .min_by_key(|(_, c)| c.last_seen)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.0.remove(&oldest);
                }
            }
        }
        self.0.entry(key).or_default()
    }
}

impl<K> Default for Counters<K> {
    fn default() -> Self {
        Counters(HashMap::new())
    }
}

#[derive(Debug, Default)]
struct State {
    pairs: Counters<(AddressKey, String)>,
    addresses: Counters<AddressKey>,
    users: Counters<String>,
    /// Per user, the addresses that logged in successfully and when they last did.
    trusted: HashMap<String, Vec<(AddressKey, Instant)>>,
}

/// The lockout state of this process. Cheap to share behind the `Mailstore`.
#[derive(Debug, Default)]
pub(crate) struct LoginGuard {
    options: LoginGuardOptions,
    state: Mutex<State>,
}

/// User names are compared the way logins are looked up: trimmed, case-insensitive.
fn user_key(user: &str) -> String {
    user.trim().to_lowercase()
}

impl LoginGuard {
    pub(crate) fn new(options: LoginGuardOptions) -> LoginGuard {
        LoginGuard {
            options,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the tables consistent, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.options.window_secs).min(MAX_PERIOD)
    }

    fn lockout(&self) -> Duration {
        Duration::from_secs(self.options.lockout_secs).min(MAX_PERIOD)
    }

    /// Whether a login for `user` from `ip` is refused now, and by which counter.
    pub(crate) fn refused(&self, now: Instant, ip: IpAddr, user: &str) -> Option<LockScope> {
        let address = AddressKey::of(ip);
        let user = user_key(user);
        let state = self.state();
        if state.pairs.locked(&(address, user.clone()), now) {
            return Some(LockScope::Pair);
        }
        if !ip.to_canonical().is_loopback() && state.addresses.locked(&address, now) {
            return Some(LockScope::Address);
        }
        if state.users.locked(&user, now) {
            let trusted = state.trusted.get(&user).is_some_and(|list| {
                list.iter()
                    .any(|&(a, at)| a == address && now.duration_since(at) < TRUST_TTL)
            });
            if !trusted {
                return Some(LockScope::User);
            }
        }
        None
    }

    /// Counts a failed login; returns the scopes this failure locked.
    pub(crate) fn failed(&self, now: Instant, ip: IpAddr, user: &str) -> Vec<LockScope> {
        let (window, lockout) = (self.window(), self.lockout());
        let address = AddressKey::of(ip);
        let user = user_key(user);
        let options = &self.options;
        let mut state = self.state();
        let mut locked = Vec::new();
        if options.max_failures_per_pair > 0
            && state
                .pairs
                .entry((address, user.clone()), now, window)
                .fail(now, options.max_failures_per_pair, window, lockout)
        {
            locked.push(LockScope::Pair);
        }
        if options.max_failures_per_ip > 0
            && !ip.to_canonical().is_loopback()
            && state.addresses.entry(address, now, window).fail(
                now,
                options.max_failures_per_ip,
                window,
                lockout,
            )
        {
            locked.push(LockScope::Address);
        }
        if options.max_failures_per_user > 0
            && state.users.entry(user, now, window).fail(
                now,
                options.max_failures_per_user,
                window,
                lockout,
            )
        {
            locked.push(LockScope::User);
        }
        locked
    }

    /// Records a successful login: the pair's failures are forgiven and the address
    /// becomes trusted for the user.
    pub(crate) fn succeeded(&self, now: Instant, ip: IpAddr, user: &str) {
        let address = AddressKey::of(ip);
        let user = user_key(user);
        let mut state = self.state();
        state.pairs.0.remove(&(address, user.clone()));
        if !state.trusted.contains_key(&user) && state.trusted.len() >= MAX_TRACKED {
            state.trusted.retain(|_, list| {
                list.iter()
                    .any(|&(_, at)| now.duration_since(at) < TRUST_TTL)
            });
            if state.trusted.len() >= MAX_TRACKED {
                // Trust is a convenience; forgetting some only means those users'
                // devices wait out a user lockout like anyone else.
                return;
            }
        }
        let list = state.trusted.entry(user).or_default();
        list.retain(|&(a, at)| a != address && now.duration_since(at) < TRUST_TTL);
        list.push((address, now));
        if list.len() > MAX_TRUSTED_PER_USER {
            list.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(pair: u32, ip: u32, user: u32) -> LoginGuard {
        LoginGuard::new(LoginGuardOptions {
            max_failures_per_pair: pair,
            max_failures_per_ip: ip,
            max_failures_per_user: user,
            window_secs: 60,
            lockout_secs: 300,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_pair_locks_after_its_threshold_and_unlocks_after_the_lockout() {
        let g = guard(3, 0, 0);
        let t0 = Instant::now();
        let attacker = ip("192.0.2.1");
        for i in 0..2 {
            assert!(g.failed(t0, attacker, "alice").is_empty(), "failure {i}");
            assert_eq!(g.refused(t0, attacker, "alice"), None);
        }
        assert_eq!(g.failed(t0, attacker, "alice"), vec![LockScope::Pair]);
        assert_eq!(g.refused(t0, attacker, "Alice "), Some(LockScope::Pair));
        // Other users from that address, and that user from elsewhere, are unaffected.
        assert_eq!(g.refused(t0, attacker, "bob"), None);
        assert_eq!(g.refused(t0, ip("192.0.2.2"), "alice"), None);
        let later = t0 + Duration::from_secs(299);
        assert_eq!(g.refused(later, attacker, "alice"), Some(LockScope::Pair));
        let after = t0 + Duration::from_secs(300);
        assert_eq!(g.refused(after, attacker, "alice"), None);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let g = guard(3, 0, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        g.failed(t0, a, "alice");
        g.failed(t0 + Duration::from_secs(30), a, "alice");
        // The first failure has left the 60 s window by now.
        assert!(
            g.failed(t0 + Duration::from_secs(61), a, "alice")
                .is_empty()
        );
        assert_eq!(
            g.failed(t0 + Duration::from_secs(62), a, "alice"),
            vec![LockScope::Pair]
        );
    }

    #[test]
    fn success_forgives_the_pair() {
        let g = guard(3, 0, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        g.failed(t0, a, "alice");
        g.failed(t0, a, "alice");
        g.succeeded(t0, a, "alice");
        assert!(g.failed(t0, a, "alice").is_empty());
        assert!(g.failed(t0, a, "alice").is_empty());
    }

    #[test]
    fn spraying_many_users_locks_the_address_but_never_loopback() {
        let g = guard(0, 4, 0);
        let t0 = Instant::now();
        let sprayer = ip("198.51.100.7");
        for user in ["a", "b", "c"] {
            assert!(g.failed(t0, sprayer, user).is_empty());
        }
        assert_eq!(g.failed(t0, sprayer, "d"), vec![LockScope::Address]);
        assert_eq!(g.refused(t0, sprayer, "e"), Some(LockScope::Address));
        for user in ["a", "b", "c", "d", "e", "f"] {
            assert!(g.failed(t0, ip("127.0.0.1"), user).is_empty());
            assert!(g.failed(t0, ip("::1"), user).is_empty());
        }
        assert_eq!(g.refused(t0, ip("127.0.0.1"), "g"), None);
    }

    #[test]
    fn ipv6_is_counted_by_its_slash_64() {
        let g = guard(2, 0, 0);
        let t0 = Instant::now();
        g.failed(t0, ip("2001:db8:1:2::1"), "alice");
        g.failed(t0, ip("2001:db8:1:2::ffff"), "alice");
        assert_eq!(
            g.refused(t0, ip("2001:db8:1:2:abcd::9"), "alice"),
            Some(LockScope::Pair)
        );
        assert_eq!(g.refused(t0, ip("2001:db8:1:3::1"), "alice"), None);
        // An IPv4-mapped address is its IPv4 address.
        g.failed(t0, ip("::ffff:192.0.2.9"), "bob");
        g.failed(t0, ip("192.0.2.9"), "bob");
        assert_eq!(g.refused(t0, ip("192.0.2.9"), "bob"), Some(LockScope::Pair));
    }

    #[test]
    fn a_user_lockout_spares_addresses_the_user_logged_in_from() {
        let g = guard(0, 0, 5);
        let t0 = Instant::now();
        let home = ip("203.0.113.5");
        g.succeeded(t0, home, "alice");
        // A botnet, one failure per address.
        let mut locked = Vec::new();
        for i in 0..5 {
            locked = g.failed(t0, ip(&format!("192.0.2.{i}")), "alice");
        }
        assert_eq!(locked, vec![LockScope::User]);
        assert_eq!(
            g.refused(t0, ip("192.0.2.200"), "alice"),
            Some(LockScope::User)
        );
        assert_eq!(g.refused(t0, home, "alice"), None);
        assert_eq!(g.refused(t0, ip("192.0.2.200"), "bob"), None);
        // Trust expires.
        let much_later = t0 + TRUST_TTL;
        for i in 0..5 {
            g.failed(much_later, ip(&format!("192.0.2.{i}")), "alice");
        }
        assert_eq!(g.refused(much_later, home, "alice"), Some(LockScope::User));
    }

    #[test]
    fn huge_periods_are_capped_instead_of_overflowing() {
        let g = LoginGuard::new(LoginGuardOptions {
            max_failures_per_pair: 1,
            window_secs: u64::MAX,
            lockout_secs: u64::MAX,
            ..LoginGuardOptions::default()
        });
        let t0 = Instant::now();
        assert_eq!(
            g.failed(t0, ip("192.0.2.1"), "alice"),
            vec![LockScope::Pair]
        );
        let later = t0 + MAX_PERIOD - Duration::from_secs(1);
        assert_eq!(
            g.refused(later, ip("192.0.2.1"), "alice"),
            Some(LockScope::Pair)
        );
        assert_eq!(g.refused(t0 + MAX_PERIOD, ip("192.0.2.1"), "alice"), None);
    }

    #[test]
    fn zero_turns_a_counter_off() {
        let g = guard(0, 0, 0);
        let t0 = Instant::now();
        for _ in 0..50 {
            assert!(g.failed(t0, ip("192.0.2.1"), "alice").is_empty());
        }
        assert_eq!(g.refused(t0, ip("192.0.2.1"), "alice"), None);
    }

    #[test]
    fn tables_stay_bounded() {
        let g = guard(3, 0, 0);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED + 10) {
            g.failed(t0, ip("192.0.2.1"), &format!("user{i}"));
        }
        assert!(g.state().pairs.0.len() <= MAX_TRACKED);
    }

    #[test]
    fn options_parse_with_defaults_and_refuse_unknown_fields() {
        let options: LoginGuardOptions = toml::from_str("max_failures_per_pair = 3\n").unwrap();
        assert_eq!(options.max_failures_per_pair, 3);
        assert_eq!(options.max_failures_per_user, 100);
        assert!(toml::from_str::<LoginGuardOptions>("max_failures = 3\n").is_err());
    }
}
