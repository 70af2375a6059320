//! The per-request check of each strategy exactly as the target runs it (`Strategy::authenticate`:
//! verify + claims + store lookup where there is one), on the memory store and over a real
//! redis-server round trip; plus session-id generation, the denylist check and refresh rotation.
//!
//! Groups (ids are `strategy[/ALG]` or `store`):
//! - `ids`             : session id generation, the credential hash the store keys by;
//! - `check_memory`    : `authenticate` on the in-process store;
//! - `check_redis`     : the same on a private redis-server (skipped, with a message, when none starts);
//! - `denylist`        : `jwt-denylist` refusing a revoked token (verify + jti lookup that hits);
//! - `refresh_rotation`: `jwt-refresh` redeeming its refresh token for a new pair, chained.
//!
//! A strategy that does not work yet (a placeholder) is skipped with a message, never benchmarked.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authbench_benches::{self as fx, RedisServer, TYPICAL};
use authbench_targets::config::{AuthzSource, StrategyKind};
use authbench_targets::ids::{self, SECRET_BYTES};
use authbench_targets::store::Store;
use authbench_targets::strategy::{
    Credential, Grant, JwtDenylistStrategy, JwtRefreshStrategy, JwtStrategy, SessionStrategy, Strategy,
};
use authbench_targets::{Alg, token::JwtCodec};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("ids");
    g.bench_function("session_id", |b| b.iter(|| ids::random_token::<SECRET_BYTES>().expect("rng")));
    let sid = ids::random_token::<SECRET_BYTES>().expect("rng");
    g.bench_function("hash_credential", |b| b.iter(|| ids::hash_credential(black_box(&sid))));
    g.bench_function("session_id+hash", |b| {
        b.iter(|| ids::hash_credential(&ids::random_token::<SECRET_BYTES>().expect("rng")))
    });
    g.finish();
}

fn shared_codec(kind: StrategyKind, alg: Alg) -> Arc<JwtCodec> {
    let config = fx::target_config(kind, alg, AuthzSource::Claims);
    Arc::new(JwtCodec::new(
        fx::key_material(alg),
        fx::ISSUER,
        fx::AUDIENCE,
        config.access_ttl,
        config.leeway,
        TYPICAL.bloat,
    ))
}

/// The credential a fresh login hands out, as the client would present it back.
fn credential(grant: &Grant) -> Option<(String, bool)> {
    match grant {
        Grant::Session { sid, .. } => Some((sid.clone(), true)),
        Grant::Tokens { access_token, .. } => Some((access_token.clone(), false)),
        Grant::Anonymous { .. } => None,
    }
}

fn present(cred: &str, cookie: bool) -> Credential<'_> {
    if cookie { Credential::Cookie(cred) } else { Credential::Bearer(cred) }
}

/// Log in once, check that the credential is accepted, then time `authenticate` with it.
fn bench_check<S: Strategy>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    store_kind: &str,
    id: &str,
    strategy: S,
) {
    let prepared = rt.block_on(async {
        let grant = strategy.login(fx::SUBJECT, Credential::Missing).await.map_err(|e| format!("login: {e:?}"))?;
        let (cred, cookie) = credential(&grant).ok_or("login granted no credential")?;
        strategy.authenticate(present(&cred, cookie)).await.map_err(|e| format!("authenticate: {e:?}"))?;
        Ok::<_, String>((cred, cookie))
    });
    let (cred, cookie) = match prepared {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipping {store_kind} check {id}: not working yet ({why})");
            return;
        }
    };
    g.bench_function(id, |b| {
        b.to_async(rt).iter(|| async { strategy.authenticate(black_box(present(&cred, cookie))).await.expect("check") })
    });
}

fn checks(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, store: &Store) {
    let session_cfg = fx::target_config(SessionStrategy::KIND, Alg::Hs256, AuthzSource::Claims);
    let roles = shared_codec(SessionStrategy::KIND, Alg::Hs256).roles().to_vec();
    bench_check(g, rt, store.kind(), "session", SessionStrategy::new(store.clone(), session_cfg.session_ttl, &roles));
    for alg in [Alg::Hs256, Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let codec = shared_codec(JwtStrategy::KIND, alg);
        bench_check(
            g,
            rt,
            store.kind(),
            &format!("jwt/{alg}"),
            JwtStrategy::new(codec, store.clone(), AuthzSource::Claims),
        );
    }
    let codec = shared_codec(JwtStrategy::KIND, Alg::Hs256);
    bench_check(
        g,
        rt,
        store.kind(),
        "jwt+authz-store/HS256",
        JwtStrategy::new(codec, store.clone(), AuthzSource::Store),
    );
    for alg in [Alg::Hs256, Alg::Es256] {
        let config = fx::target_config(JwtDenylistStrategy::KIND, alg, AuthzSource::Claims);
        let codec = shared_codec(JwtDenylistStrategy::KIND, alg);
        bench_check(
            g,
            rt,
            store.kind(),
            &format!("jwt-denylist/{alg}"),
            JwtDenylistStrategy::new(codec, store.clone(), &config),
        );
    }
    let config = fx::target_config(JwtRefreshStrategy::KIND, Alg::Hs256, AuthzSource::Claims);
    let codec = shared_codec(JwtRefreshStrategy::KIND, Alg::Hs256);
    bench_check(g, rt, store.kind(), "jwt-refresh/HS256", JwtRefreshStrategy::new(codec, store.clone(), &config));
}

/// `jwt-denylist` refusing a token that was logged out: the full verify plus a jti lookup that hits.
fn bench_denylist(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, id: &str, store: &Store) {
    let config = fx::target_config(JwtDenylistStrategy::KIND, Alg::Hs256, AuthzSource::Claims);
    let strategy =
        JwtDenylistStrategy::new(shared_codec(JwtDenylistStrategy::KIND, Alg::Hs256), store.clone(), &config);
    let prepared = rt.block_on(async {
        let grant = strategy.login(fx::SUBJECT, Credential::Missing).await.map_err(|e| format!("login: {e:?}"))?;
        let (token, _) = credential(&grant).ok_or("no token")?;
        strategy.authenticate(Credential::Bearer(&token)).await.map_err(|e| format!("authenticate: {e:?}"))?;
        let revoked = strategy.logout(Credential::Bearer(&token), None).await.map_err(|e| format!("logout: {e:?}"))?;
        match strategy.authenticate(Credential::Bearer(&token)).await {
            Err(e) if e.status().as_u16() == 401 && revoked => Ok(token),
            other => Err(format!("a logged-out token was not refused with 401: {other:?}")),
        }
    });
    match prepared {
        Ok(token) => g.bench_function(id, |b| {
            b.to_async(rt)
                .iter(|| async { strategy.authenticate(Credential::Bearer(black_box(&token))).await.is_err() })
        }),
        Err(why) => {
            eprintln!("skipping denylist/{id}: not working yet ({why})");
            g
        }
    };
}

/// `jwt-refresh` rotation: each iteration redeems the refresh token the previous one was handed.
fn bench_rotation(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, id: &str, store: &Store) {
    let config = fx::target_config(JwtRefreshStrategy::KIND, Alg::Hs256, AuthzSource::Claims);
    let strategy = JwtRefreshStrategy::new(shared_codec(JwtRefreshStrategy::KIND, Alg::Hs256), store.clone(), &config);
    let first = rt.block_on(async {
        let grant = strategy.login(fx::SUBJECT, Credential::Missing).await.map_err(|e| format!("login: {e:?}"))?;
        let Grant::Tokens { refresh_token: Some(rt0), .. } = grant else { return Err("no refresh token".to_owned()) };
        let next = strategy.refresh(&rt0).await.map_err(|e| format!("refresh: {e:?}"))?;
        match next {
            Grant::Tokens { refresh_token: Some(rt1), .. } => Ok(rt1),
            other => Err(format!("refresh granted {other:?}")),
        }
    });
    let mut current = match first {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipping refresh_rotation/{id}: not working yet ({why})");
            return;
        }
    };
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    match strategy.refresh(&current).await.expect("rotate") {
                        Grant::Tokens { refresh_token: Some(next), .. } => current = next,
                        other => panic!("refresh granted {other:?}"),
                    }
                }
                start.elapsed()
            })
        })
    });
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let store = fx::memory_store();
    let mut g = c.benchmark_group("check_memory");
    checks(&mut g, &rt, &store);
    g.finish();
    let mut g = c.benchmark_group("denylist");
    bench_denylist(&mut g, &rt, "memory", &store);
    g.finish();
    let mut g = c.benchmark_group("refresh_rotation");
    bench_rotation(&mut g, &rt, "memory", &store);
    g.finish();
}

fn redis(c: &mut Criterion) {
    let server = match RedisServer::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipping the redis groups: {why}");
            return;
        }
    };
    let rt = runtime();
    let store =
        match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), fx::redis_store(&server.url)).await }) {
            Ok(Ok(s)) => s,
            Ok(Err(why)) => {
                eprintln!("skipping the redis groups: the redis store does not connect ({why})");
                return;
            }
            Err(_) => {
                eprintln!("skipping the redis groups: connecting to {} timed out", server.url);
                return;
            }
        };
    let mut g = c.benchmark_group("check_redis");
    checks(&mut g, &rt, &store);
    g.finish();
    let mut g = c.benchmark_group("denylist");
    bench_denylist(&mut g, &rt, "redis", &store);
    g.finish();
    let mut g = c.benchmark_group("refresh_rotation");
    bench_rotation(&mut g, &rt, "redis", &store);
    g.finish();
    drop(store);
    drop(server);
}

criterion_group!(benches, ids, memory, redis);
criterion_main!(benches);
