//! Where the time of one key goes, phase by phase, in plain Rust (no Python).
//!
//! Run: `cargo run --release --example phases` (from rust/cache_normalizer). Prints ns per
//! text and MB/s of input for: normalisation into a `String`, MD5 of the normalised bytes
//! and of the input bytes, the fused normalise-and-hash of one text, the batch's two phases
//! (normalising into a padded arena, the multi-lane MD5 of it) and the whole batch, at
//! about 100 B, 1 KB and 10 KB of mixed text like the Python benchmark's
//! (benchmarks/bench_cache_normalizer.py). Each figure is the fastest of 300 passes, which
//! on a shared machine is the least preempted one.
//!
//! `NON_ASCII_PCT` (default 5) sets the share of non-ASCII words, `CORPUS_BYTES` (default
//! 200000) the text per size. Use `CORPUS_BYTES=1000000`, the Python benchmark's corpus,
//! for figures comparable with it: over a small corpus repeated pass after pass the branch
//! predictor learns the text, and branchy phases look up to twice as fast (normalising
//! 10 KB with 5% non-ASCII words: 4.8 us at 200 KB, 8.5 us at 1 MB on a 2-core AMD EPYC
//! VM; MD5 alone 12.2 us either way). `RAYON_NUM_THREADS=1` keeps the batch on one thread.
//! `OTHER_WORDS` (space-separated) replaces the non-ASCII words, to time one kind of them.
//! `PASSES` (default 300) sets the passes per figure, `SIZES` (default `100,1000,10000`) the
//! text sizes.
//!
//! `AB=1` times instead the fused key with each way of taking a step turned off or on
//! (`normalize_and_hash_with`; `VARIANTS=7,15` picks which) against MD5 of the input, pass
//! by pass in turn, in this thread's CPU time (`AB_WALL=1`: wall time); add
//! `UNIQUE_BYTES=100000` to make the corpus of copies of that much text (the same memory,
//! but text the branch predictor learns), e.g.
//! `AB=1 SIZES=10000 CORPUS_BYTES=8000000 PASSES=25 cargo run --release --example phases`.
//! `ONCE=V` runs one pass of one of them (V as in `normalize_and_hash_with`; 255 MD5 of the
//! input, 254 nothing) for an instruction and branch count under
//! `valgrind --tool=cachegrind --cache-sim=no --branch-sim=yes`: subtract the 254 run.

use std::hint::black_box;
use std::time::Instant;

use cache_normalizer::md5::Md5;
use cache_normalizer::md5_lanes;
use cache_normalizer::normalize::{
    normalize, normalize_and_hash, normalize_and_hash_hex_batch, normalize_and_hash_with,
    normalize_to, ALL, BEFORE_LONG_CHARS, LINEAR_STAGE, ONE_DROP, WHOLE_STEPS,
};

const ASCII_WORDS: &str =
    "the of and to in is for on that with as by this from at are be release fixed \
    security update package version upstream bug new build patch debian changelog \
    Closes CVE-2024-1234 OpenSSL libc6 systemd kernel python3 rust cache query \
    Retrieval GRAPH Node state checkpoint thread run embedding collection payload";
const OTHER_WORDS: &str = "café naïve Größe façade Ångström Москва привет Ελλάδα ΟΔΟΣ 東京 数据 \
    İstanbul straße Ωmega 😀 🚀 ñandú";
const SEPARATORS: [&str; 17] = [
    " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", "  ", "\n", "\t", ", ", ". ",
];

/// A small deterministic generator (64-bit LCG), enough to pick words.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn make_text(rng: &mut Lcg, size: usize, non_ascii_pct: usize) -> String {
    let ascii: Vec<&str> = ASCII_WORDS.split_whitespace().collect();
    let other_words = std::env::var("OTHER_WORDS").unwrap_or_else(|_| OTHER_WORDS.to_owned());
    let other: Vec<&str> = other_words.split_whitespace().collect();
    let mut out = String::new();
    while out.len() < size {
        let pool = if rng.below(100) < non_ascii_pct {
            &other
        } else {
            &ascii
        };
        let word = pool[rng.below(pool.len())];
        if rng.below(10) == 0 {
            let mut chars = word.chars();
            let first = chars.next().unwrap();
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        } else {
            out.push_str(word);
        }
        out.push_str(SEPARATORS[rng.below(SEPARATORS.len())]);
    }
    out
}

/// Fastest of `passes` passes of at least 2 ms (on a shared machine the fastest is the
/// least preempted one), in seconds per call of `f`.
fn time(passes: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        let mut loops = 0u64;
        loop {
            f();
            loops += 1;
            if start.elapsed().as_secs_f64() > 0.002 {
                break;
            }
        }
        best = best.min(start.elapsed().as_secs_f64() / loops as f64);
    }
    best
}

fn main() {
    println!(
        "{:>6} {:<28} {:>10} {:>9}",
        "size", "phase", "ns/text", "MB/s"
    );
    let pct: usize = std::env::var("NON_ASCII_PCT").map_or(5, |v| v.parse().expect("a percentage"));
    let corpus: usize =
        std::env::var("CORPUS_BYTES").map_or(200_000, |v| v.parse().expect("bytes"));
    let passes: usize = std::env::var("PASSES").map_or(300, |v| v.parse().expect("a count"));
    let sizes: Vec<usize> = std::env::var("SIZES").map_or(vec![100, 1_000, 10_000], |v| {
        v.split(',')
            .map(|s| s.parse().expect("sizes in bytes"))
            .collect()
    });
    println!(
        "{pct}% of words non-ASCII (NON_ASCII_PCT), {corpus} bytes per size (CORPUS_BYTES), \
         fastest of {passes} passes (PASSES)"
    );
    if std::env::var_os("AB").is_some() {
        return ab(&sizes, passes, pct, corpus);
    }
    if let Ok(variant) = std::env::var("ONCE") {
        return once(&sizes, variant.parse().expect("a variant"), pct, corpus);
    }
    let time = |f: &mut dyn FnMut()| time(passes, f);
    for size in sizes {
        let mut rng = Lcg(size as u64);
        let texts: Vec<String> = (0..(corpus / size).max(8))
            .map(|_| make_text(&mut rng, size, pct))
            .collect();
        let bytes: usize = texts.iter().map(String::len).sum();
        let normalized: Vec<String> = texts.iter().map(|t| normalize(t)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let n = texts.len() as f64;
        let report = |name: &str, s: f64| {
            println!(
                "{:>5}B {:<28} {:>10.1} {:>9.1}",
                bytes / texts.len(),
                name,
                s / n * 1e9,
                bytes as f64 / s / 1e6
            );
        };
        report(
            "normalize -> String",
            time(&mut || {
                for t in &texts {
                    black_box(normalize(black_box(t)));
                }
            }),
        );
        report(
            "md5 of normalised bytes",
            time(&mut || {
                for t in &normalized {
                    black_box(Md5::digest(black_box(t.as_bytes())));
                }
            }),
        );
        report(
            "md5 of input bytes",
            time(&mut || {
                for t in &texts {
                    black_box(Md5::digest(black_box(t.as_bytes())));
                }
            }),
        );
        report(
            "fused normalize_and_hash",
            time(&mut || {
                for t in &texts {
                    black_box(normalize_and_hash(black_box(t)));
                }
            }),
        );
        // The batch's two phases: normalise into one padded arena, then the MD5 lanes.
        let mut arena = Vec::new();
        let mut messages = Vec::new();
        report(
            "batch: normalise into arena",
            time(&mut || {
                arena.clear();
                messages.clear();
                for t in &texts {
                    let start = arena.len();
                    normalize_to(black_box(t), &mut arena);
                    messages.push(md5_lanes::pad(&mut arena, start));
                }
            }),
        );
        let mut digests = vec![[0u8; 16]; texts.len()];
        report(
            "batch: md5 lanes of arena",
            time(&mut || md5_lanes::digest_padded(black_box(&arena), &messages, &mut digests)),
        );
        report(
            "batch (rayon above 32 KB)",
            time(&mut || {
                black_box(normalize_and_hash_hex_batch(black_box(&refs)));
            }),
        );
        println!();
    }
}

/// Seconds of CPU time this thread has run (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, from
/// the C library std links on Linux), or of wall time elsewhere and with `AB_WALL=1`.
fn clock() -> f64 {
    static WALL: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[cfg(target_os = "linux")]
    if std::env::var_os("AB_WALL").is_none() {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut time = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux).
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) } == 0 {
            return time.sec as f64 + time.nsec as f64 * 1e-9;
        }
    }
    WALL.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// `AB=1`: the fused key with each way of taking a step turned on or off
/// (`normalize_and_hash_with`: by default none, the step before them; [`WHOLE_STEPS`];
/// [`ONE_DROP`]; [`LINEAR_STAGE`]; all but `LONG_CHARS`; all, what the entry points use)
/// and MD5 of the input, pass by pass in turn (one pass: the whole corpus once), so that
/// load from other processes falls on all alike. Prints the fastest and the median pass
/// of each, and the median of the per-pass ratios to MD5.
fn ab(sizes: &[usize], passes: usize, pct: usize, corpus: usize) {
    for &size in sizes {
        let mut rng = Lcg(size as u64);
        // UNIQUE_BYTES: that much text, copied over and over to fill the corpus (the same
        // memory footprint, but text the branch predictor can learn).
        let unique: usize =
            std::env::var("UNIQUE_BYTES").map_or(corpus, |v| v.parse().expect("bytes"));
        let unique: Vec<String> = (0..(unique / size).max(1))
            .map(|_| make_text(&mut rng, size, pct))
            .collect();
        let texts: Vec<String> = unique
            .iter()
            .cycle()
            .take((corpus / size).max(8))
            .cloned()
            .collect();
        // VARIANTS: the variants to time, comma-separated (default: each way alone, all).
        let variants: Vec<u8> = std::env::var("VARIANTS").map_or(
            vec![
                0,
                WHOLE_STEPS,
                ONE_DROP,
                LINEAR_STAGE,
                BEFORE_LONG_CHARS,
                ALL,
            ],
            |v| v.split(',').map(|x| x.parse().expect("variants")).collect(),
        );
        let mut names: Vec<String> = variants.iter().map(|v| format!("variant {v}")).collect();
        names.push("md5 of input".into());
        for t in &texts {
            let want = normalize_and_hash(t);
            assert!(variants
                .iter()
                .all(|&w| normalize_and_hash_with(t, w) == want));
        }
        let n = texts.len() as f64;
        let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for pass in 0..passes {
            for turn in 0..names.len() {
                let which = (pass + turn) % names.len();
                let start = clock();
                for t in &texts {
                    if which == variants.len() {
                        black_box(Md5::digest(black_box(t.as_bytes())));
                    } else {
                        black_box(normalize_and_hash_with(black_box(t), variants[which]));
                    }
                }
                seconds[which].push(clock() - start);
            }
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        for (name, s) in names.iter().zip(&seconds) {
            let ratios: Vec<f64> = seconds[variants.len()]
                .iter()
                .zip(s)
                .map(|(m, x)| m / x)
                .collect();
            println!(
                "{size:>6}B {name:<16} fastest {:>9.1} ns/text, median {:>9.1}, x md5 {:.3}",
                s.iter().copied().fold(f64::INFINITY, f64::min) / n * 1e9,
                median(s) / n * 1e9,
                median(&ratios),
            );
        }
    }
}

/// `ONCE=V`: one pass of `normalize_and_hash_with(text, V)` over the corpus of each size
/// (V = 255: MD5 of the input; 254: nothing, the cost of making the corpus), and nothing else, to count instructions and branches
/// under a simulator: `valgrind --tool=cachegrind --cache-sim=no --branch-sim=yes`.
fn once(sizes: &[usize], variant: u8, pct: usize, corpus: usize) {
    for &size in sizes {
        let mut rng = Lcg(size as u64);
        let texts: Vec<String> = (0..(corpus / size).max(8))
            .map(|_| make_text(&mut rng, size, pct))
            .collect();
        for t in &texts {
            if variant == 254 {
                black_box(t);
            } else if variant == 255 {
                black_box(Md5::digest(black_box(t.as_bytes())));
            } else {
                black_box(normalize_and_hash_with(black_box(t), variant));
            }
        }
        println!("{size}: {} texts", texts.len());
    }
}
