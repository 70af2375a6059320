//! Token issue and verify, per algorithm x claim size, next to the raw aws-lc-rs primitive (the floor),
//! and a layer-by-layer breakdown of where jsonwebtoken's time goes above the crypto.
//!
//! Groups (ids are `ALG/size` or `layer/ALG`):
//! - `verify`       : `JwtCodec::verify`, the target's full verification (header checks, signature, claims);
//! - `issue`        : `JwtCodec::issue`;
//! - `floor_verify` : aws-lc-rs verify, key parsed once, over the token's own signing input and signature;
//! - `floor_sign`   : aws-lc-rs sign, key pair parsed once, over the same signing input;
//! - `verify_layers`: typical claims, from the floor up to the codec, one layer added per step;
//! - `issue_layers` : the same for signing.

use std::hint::black_box;

use authbench_benches::{
    self as fx, PerCallVerifier, RawSigner, RawVerifier, SIZES, TYPICAL, jsonwebtoken_signing_der,
    sign_parsing_key_per_call, split_token,
};
use authbench_targets::Alg;
use authbench_targets::token::{ACCESS_TYP, AccessClaims};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn verify_and_issue(c: &mut Criterion) {
    let mut verify = c.benchmark_group("verify");
    for alg in Alg::ALL {
        for size in SIZES {
            let codec = fx::codec(alg, size);
            let token = fx::token(&codec);
            verify.bench_function(BenchmarkId::new(alg.name(), size.name), |b| {
                b.iter(|| codec.verify(black_box(&token)).expect("verify"))
            });
        }
    }
    verify.finish();

    let mut issue = c.benchmark_group("issue");
    for alg in Alg::ALL {
        for size in SIZES {
            let codec = fx::codec(alg, size);
            issue.bench_function(BenchmarkId::new(alg.name(), size.name), |b| {
                b.iter(|| codec.issue(black_box(fx::SUBJECT), Some(fx::JTI)).expect("issue"))
            });
        }
    }
    issue.finish();
}

fn floor(c: &mut Criterion) {
    let mut verify = c.benchmark_group("floor_verify");
    for alg in Alg::ALL {
        let raw = RawVerifier::new(alg);
        for size in SIZES {
            let (msg, sig) = split_token(&fx::token(&fx::codec(alg, size)));
            assert!(raw.verify(&msg, &sig), "{alg} floor must accept the codec's token");
            verify.bench_function(BenchmarkId::new(alg.name(), size.name), |b| {
                b.iter(|| raw.verify(black_box(&msg), black_box(&sig)))
            });
        }
    }
    verify.finish();

    let mut sign = c.benchmark_group("floor_sign");
    for alg in Alg::ALL {
        let raw = RawSigner::new(alg);
        for size in SIZES {
            let (msg, _) = split_token(&fx::token(&fx::codec(alg, size)));
            sign.bench_function(BenchmarkId::new(alg.name(), size.name), |b| b.iter(|| raw.sign(black_box(&msg))));
        }
    }
    sign.finish();
}

fn layers(c: &mut Criterion) {
    let mut verify = c.benchmark_group("verify_layers");
    for alg in Alg::ALL {
        let codec = fx::codec(alg, TYPICAL);
        let keys = fx::key_material(alg);
        let token = fx::token(&codec);
        let (msg, sig) = split_token(&token);
        let (_, sig_b64) = token.rsplit_once('.').expect("jws");
        let validation = fx::validation(alg);

        let raw = RawVerifier::new(alg);
        verify.bench_function(BenchmarkId::new("1-floor", alg.name()), |b| {
            b.iter(|| assert!(raw.verify(black_box(&msg), black_box(&sig))))
        });
        let per_call = PerCallVerifier::new(alg);
        verify.bench_function(BenchmarkId::new("2-key-per-call", alg.name()), |b| {
            b.iter(|| assert!(per_call.verify(black_box(&msg), black_box(&sig))))
        });
        verify.bench_function(BenchmarkId::new("3-jwt-crypto-verify", alg.name()), |b| {
            b.iter(|| {
                let ok = jsonwebtoken::crypto::verify(black_box(sig_b64), black_box(&msg), &keys.decoding, alg.jwt());
                assert!(ok.expect("verify"))
            })
        });
        verify.bench_function(BenchmarkId::new("4-jwt-decode", alg.name()), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessClaims>(black_box(&token), &keys.decoding, &validation).expect("decode")
            })
        });
        verify.bench_function(BenchmarkId::new("5-codec-verify", alg.name()), |b| {
            b.iter(|| codec.verify(black_box(&token)).expect("verify"))
        });
    }
    verify.finish();

    let mut issue = c.benchmark_group("issue_layers");
    for alg in Alg::ALL {
        let codec = fx::codec(alg, TYPICAL);
        let keys = fx::key_material(alg);
        let (msg, _) = split_token(&fx::token(&codec));
        let raw = RawSigner::new(alg);
        issue.bench_function(BenchmarkId::new("1-floor", alg.name()), |b| b.iter(|| raw.sign(black_box(&msg))));
        let der = jsonwebtoken_signing_der(alg);
        issue.bench_function(BenchmarkId::new("2-key-per-call", alg.name()), |b| {
            b.iter(|| sign_parsing_key_per_call(alg, &der, black_box(&msg)))
        });
        issue.bench_function(BenchmarkId::new("3-jwt-crypto-sign", alg.name()), |b| {
            b.iter(|| jsonwebtoken::crypto::sign(black_box(&msg), &keys.encoding, alg.jwt()).expect("sign"))
        });
        issue.bench_function(BenchmarkId::new("4-codec-issue", alg.name()), |b| {
            b.iter(|| codec.issue(black_box(fx::SUBJECT), Some(fx::JTI)).expect("issue"))
        });
    }
    issue.finish();
}

fn print_token_sizes() {
    for size in SIZES {
        let lens: Vec<String> =
            Alg::ALL.iter().map(|&alg| format!("{alg}={}", fx::token(&fx::codec(alg, size)).len())).collect();
        eprintln!("token bytes, {} claims ({ACCESS_TYP}): {}", size.name, lens.join(" "));
    }
}

fn sizes(_: &mut Criterion) {
    print_token_sizes();
}

criterion_group!(benches, sizes, verify_and_issue, floor, layers);
criterion_main!(benches);
