//! The shared golden cases (tests/golden/normalizer_cases.json), also read by pytest.

use cache_normalizer::normalize::{
    normalize, normalize_and_hash_hex, normalize_and_hash_hex_batch, normalize_code_points,
};
use serde_json::Value;

const GOLDEN: &str = include_str!("../../../tests/golden/normalizer_cases.json");

struct Case {
    name: String,
    input: String,
    normalized: String,
    md5: String,
}

fn cases() -> Vec<Case> {
    let doc: Value = serde_json::from_str(GOLDEN).expect("golden file is JSON");
    let field = |case: &Value, key: &str| case[key].as_str().expect(key).to_owned();
    let cases: Vec<Case> = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| Case {
            name: field(case, "name"),
            input: field(case, "input"),
            normalized: field(case, "normalized"),
            md5: field(case, "md5"),
        })
        .collect();
    assert!(cases.len() >= 50, "golden file lost its cases");
    cases
}

#[test]
fn normalize_matches_golden() {
    for case in cases() {
        assert_eq!(normalize(&case.input), case.normalized, "{}", case.name);
    }
}

#[test]
fn hash_matches_golden() {
    for case in cases() {
        let hex = normalize_and_hash_hex(&case.input);
        assert_eq!(
            std::str::from_utf8(&hex).unwrap(),
            case.md5,
            "{}",
            case.name
        );
    }
}

#[test]
fn batch_matches_golden_in_order() {
    let cases = cases();
    // Repeat so the batch also crosses the parallel threshold.
    let inputs: Vec<&str> = cases
        .iter()
        .map(|c| c.input.as_str())
        .cycle()
        .take(cases.len() * 40)
        .collect();
    let hexes = normalize_and_hash_hex_batch(&inputs);
    assert_eq!(hexes.len(), inputs.len());
    for (hex, case) in hexes.iter().zip(cases.iter().cycle()) {
        assert_eq!(std::str::from_utf8(hex).unwrap(), case.md5, "{}", case.name);
    }
}

#[test]
fn code_point_path_matches_golden() {
    for case in cases() {
        let input: Vec<u32> = case.input.chars().map(u32::from).collect();
        let want: Vec<u32> = case.normalized.chars().map(u32::from).collect();
        assert_eq!(normalize_code_points(&input), want, "{}", case.name);
    }
}
