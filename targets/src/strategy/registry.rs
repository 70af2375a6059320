//! The one list of strategies: each line ties a strategy's [`StrategyProfile`] to the function that
//! builds and serves it. [`StrategyKind`] (the `--strategy` value, the results' `strategy` field) is
//! a handle on a registered profile; its names, `ALL`, parsing and serialization come from here.
//!
//! Adding a strategy: its file (implementation, `PROFILE`, [`Strategy::build`]), `pub mod` in
//! `strategy/mod.rs` and one line in [`REGISTRY`]. Tests reach it by name
//! (`StrategyKind::from_name`) or through its own `Strategy::KIND`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::profile::StrategyProfile;
use super::{
    BuildContext, JwtDenylistStrategy, JwtRefreshStrategy, JwtStrategy, NoneStrategy, SessionStrategy, Strategy,
};
use crate::config::TargetConfig;
use crate::metrics::Metrics;
use crate::server::{App, run};
use crate::store::Store;

/// A shutdown signal handed to a strategy's serve function.
pub type Shutdown<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
/// The future a serve function returns.
pub type Serving<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;
/// Build the strategy from the validated config and serve it until shutdown.
pub type ServeFn = for<'a> fn(&'a TargetConfig, TcpListener, Store, Arc<Metrics>, Shutdown<'a>) -> Serving<'a>;

/// One registered strategy.
pub struct Registered {
    pub profile: &'static StrategyProfile,
    pub serve: ServeFn,
}

/// Every strategy, in report order. One line each.
pub const REGISTRY: &[Registered] = &[
    Registered { profile: NoneStrategy::PROFILE, serve: serve_with::<NoneStrategy> },
    Registered { profile: SessionStrategy::PROFILE, serve: serve_with::<SessionStrategy> },
    Registered { profile: JwtStrategy::PROFILE, serve: serve_with::<JwtStrategy> },
    Registered { profile: JwtDenylistStrategy::PROFILE, serve: serve_with::<JwtDenylistStrategy> },
    Registered { profile: JwtRefreshStrategy::PROFILE, serve: serve_with::<JwtRefreshStrategy> },
    Registered { profile: &super::hybrid::PROFILE, serve: serve_with::<super::hybrid::HybridStrategy> },
    Registered {
        profile: &super::session_cached::PROFILE,
        serve: serve_with::<super::session_cached::SessionCachedStrategy>,
    },
    Registered {
        profile: &super::jwt_denylist_cached::PROFILE,
        serve: serve_with::<super::jwt_denylist_cached::JwtDenylistCachedStrategy>,
    },
    Registered { profile: &super::web_api::PROFILE, serve: serve_with::<super::web_api::WebApiStrategy> },
];

/// Every strategy's kind, in registry order (what `StrategyKind::ALL` is).
static KINDS: [StrategyKind; REGISTRY.len()] = {
    let mut kinds = [StrategyKind(REGISTRY[0].profile); REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        kinds[i] = StrategyKind(REGISTRY[i].profile);
        i += 1;
    }
    kinds
};

/// Named handles, for tests and benchmarks that exercise one strategy. Production code asks the
/// profile instead of comparing with these.
impl StrategyKind {
    pub const NONE: StrategyKind = StrategyKind(NoneStrategy::PROFILE);
    pub const SESSION: StrategyKind = StrategyKind(SessionStrategy::PROFILE);
    pub const JWT: StrategyKind = StrategyKind(JwtStrategy::PROFILE);
    pub const JWT_DENYLIST: StrategyKind = StrategyKind(JwtDenylistStrategy::PROFILE);
    pub const JWT_REFRESH: StrategyKind = StrategyKind(JwtRefreshStrategy::PROFILE);
    pub const WEB_API: StrategyKind = StrategyKind(&super::web_api::PROFILE);
}

/// Build `S` from the config and serve it: the generic body of every registry line.
pub fn serve_with<'a, S: Strategy>(
    config: &'a TargetConfig,
    listener: TcpListener,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: Shutdown<'a>,
) -> Serving<'a> {
    Box::pin(async move {
        let ctx = BuildContext { config, store: store.clone(), metrics: metrics.clone() };
        let strategy = S::build(&ctx)?;
        run(listener, Arc::new(App::new(strategy, store, metrics, config)), shutdown).await
    })
}

/// An authentication strategy the registry knows: a handle on its profile. Copy, compared by
/// profile (names are unique), hashed by name, parsed from and serialized as its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StrategyKind(&'static StrategyProfile);

impl StrategyKind {
    /// Every registered strategy, in report order.
    pub const ALL: &'static [StrategyKind] = &KINDS;

    /// The kind of a registered profile.
    pub const fn of(profile: &'static StrategyProfile) -> Self {
        StrategyKind(profile)
    }

    /// The registered strategy called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Every registered name, comma-separated (for error messages).
    pub fn names() -> String {
        Self::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }

    pub const fn name(self) -> &'static str {
        self.0.name
    }

    pub const fn profile(self) -> &'static StrategyProfile {
        self.0
    }

    /// Whether login hands out signed JWTs.
    pub const fn uses_jwt(self) -> bool {
        self.0.issues_jwt
    }

    /// The serve function of this strategy's registry line.
    pub fn serve_fn(self) -> ServeFn {
        match REGISTRY.iter().find(|r| r.profile.name == self.name()) {
            Some(r) => r.serve,
            // A StrategyKind is only ever made from a registered profile.
            None => unreachable!("strategy {} is not registered", self.name()),
        }
    }
}

impl std::hash::Hash for StrategyKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl std::fmt::Debug for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StrategyKind({})", self.name())
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StrategyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| format!("unknown strategy `{s}` (known: {})", Self::names()))
    }
}

impl clap::ValueEnum for StrategyKind {
    fn value_variants<'a>() -> &'a [Self] {
        Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.0.description))
    }
}

impl serde::Serialize for StrategyKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for StrategyKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::profile::{Clients, Refresh, Transport};

    #[test]
    fn every_profile_is_consistent() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|r| r.profile.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len(), "names are unique");
        for (kind, r) in StrategyKind::ALL.iter().zip(REGISTRY) {
            let p = r.profile;
            assert_eq!(kind.name(), p.name, "ALL follows the registry");
            assert!(
                !p.name.is_empty()
                    && p.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'+'),
                "{}",
                p.name
            );
            assert!(!p.description.is_empty() && !p.description.contains('\n'), "{}: one-line description", p.name);
            if p.refresh == Refresh::JsonBody {
                assert!(p.transport.bearer(), "{}: a refresh token renews a bearer token", p.name);
                assert!(p.issues_jwt, "{}: refresh issues access JWTs", p.name);
            }
            if p.transport.bearer() {
                assert!(p.issues_jwt, "{}: bearer credentials are JWTs here", p.name);
            }
            if p.transport == Transport::None {
                assert!(!p.logout.api_credential_refused_at_once() && !p.fail_open, "{}", p.name);
            }
            if p.fail_open {
                assert!(!p.store_ops.api.is_empty(), "{}: fail-open needs a store check to skip", p.name);
            }
            assert!(!p.ttls.access.is_zero(), "{}", p.name);
            assert!(p.auth_paths.len() <= super::super::profile::MAX_AUTH_PATHS, "{}: too many auth paths", p.name);
            assert_ne!(p.auth_paths.len(), 1, "{}: one path is named by none", p.name);
            match p.clients {
                Clients::One => {}
                Clients::CurrentAndLegacy => assert!(!p.auth_paths.is_empty(), "{}: older clients' own path", p.name),
                Clients::BrowserAndApi => {
                    assert_eq!(p.transport, Transport::Both, "{}: a cookie for browsers, a bearer for APIs", p.name);
                    assert!(p.issues_jwt && p.auth_paths.len() == 2, "{}: one path per client kind", p.name);
                }
            }
            assert_eq!(name_of(kind.name()), Some(*kind), "parses back");
        }
    }

    fn name_of(s: &str) -> Option<StrategyKind> {
        s.parse().ok()
    }

    #[test]
    fn serde_and_clap_use_the_names() {
        for kind in StrategyKind::ALL {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<StrategyKind>(&json).unwrap(), *kind);
            let v = clap::ValueEnum::to_possible_value(kind).unwrap();
            assert_eq!(v.get_name(), kind.name());
        }
        let err = serde_json::from_str::<StrategyKind>("\"jwt-magic\"").unwrap_err().to_string();
        assert!(err.contains("jwt-magic") && err.contains("jwt-denylist"), "{err}");
    }

    #[test]
    fn contract_names_unchanged() {
        let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.name()).collect();
        for name in ["none", "session", "jwt", "jwt-denylist", "jwt-refresh"] {
            assert!(names.contains(&name), "{name} is a contract name");
        }
    }
}
