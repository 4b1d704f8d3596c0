//! Revision data: the exact bytes of a ControllerRevision's `data` (Go `encoding/json` output) and
//! the revision hash (§2.2, §12.1, §12.2).
//!
//! Upstream decides whether a ControllerRevision is *current* by comparing its stored `data`
//! byte-for-byte with `getPatch(ds)`: the DaemonSet marshalled by Go, unmarshalled into a
//! `map[string]interface{}` (with `k8s.io/apimachinery/pkg/util/json`, which keeps integers that
//! fit an `int64` as `int64` and turns every other number into a `float64`), reduced to
//! `{"spec":{"template":<template + "$patch":"replace">}}` and marshalled again. Marshalling a
//! generic map sorts object keys and applies Go's HTML-safe string escaping. [`go_json`]
//! reproduces that encoder for a [`serde_json::Value`], so that everynode writes, and recognises,
//! the very bytes kube-controller-manager writes.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Key upstream adds to the snapshotted template so that the revision, applied as a strategic
/// merge patch (`kubectl rollout undo`), replaces the whole template.
pub const PATCH_DIRECTIVE_KEY: &str = "$patch";
/// Value of [`PATCH_DIRECTIVE_KEY`].
pub const PATCH_DIRECTIVE_REPLACE: &str = "replace";

/// Alphabet of apimachinery's `rand.SafeEncodeString` (no vowels, no `0`, `1`, `3`).
pub const SAFE_ENCODE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV32_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// Serializes `value` exactly as Go's `json.Marshal` serializes the same tree held as
/// `map[string]interface{}` / `[]interface{}` / `string` / `bool` / `int64` / `float64` / `nil`.
///
/// * Object keys sorted by byte order at every depth (Go sorts map keys); arrays keep their order.
/// * No whitespace.
/// * Strings (keys and values) escaped as Go ≥ 1.22 does with HTML escaping on: `\"`, `\\`,
///   `\b`, `\f`, `\n`, `\r`, `\t`, every other byte below 0x20 as `\u00xx` (lowercase hex),
///   `<` `>` `&` as `\u003c` `\u003e` `\u0026`, U+2028/U+2029 as `\u2028`/`\u2029`. `/`, DEL
///   and all other non-ASCII characters are written as they are. (Go before 1.22 wrote `\b` and
///   `\f` as `\u0008` and `\u000c`; kube-controller-manager has been built with Go ≥ 1.22 since
///   Kubernetes 1.30.)
/// * Numbers: upstream decodes with `k8s.io/apimachinery/pkg/util/json`, which keeps every
///   integer that fits an `int64` as an `int64`; those are written unchanged. Every other number
///   (fractions, exponents, integers outside the `int64` range) is a `float64` in Go and is
///   written the way `encoding/json` writes a `float64`: the shortest round-tripping digits, in
///   plain decimal notation when `1e-6 <= |x| < 1e21` (so `1.0` → `1`,
///   `18446744073709551615` → `18446744073709552000`), otherwise in exponent notation with
///   Go's exponent style (`1e+21`, `1.5e-7`). Pod templates contain no fractional numbers, so
///   this only matters for hand-made data. One case cannot be reproduced: serde_json parses the
///   integer literal `-0` as the float `-0.0`, so it is written `-0` (Go would write `0`; for a
///   real `-0.0` both write `-0`).
///
/// Verified byte-for-byte against Go 1.26 `encoding/json` (see the golden test).
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The revision `data` upstream writes for a DaemonSet whose `spec.template`, as the API server
/// served it, is `raw_template`: `{"spec":{"template":<raw_template + "$patch":"replace">}}`, as a
/// JSON value. [`snapshot_patch`] is its [`go_json`] encoding.
///
/// `raw_template` must be the template JSON the API server served (it is produced by the same Go
/// structs as upstream's `json.Marshal(ds)`, so it carries the same zero-valued fields such as
/// `"resources":{}`); a typed k8s-openapi `PodTemplateSpec` serializes differently (§12.1).
/// A value that is not an object (impossible for a validated DaemonSet, whose template is
/// required) is treated as an empty object.
pub fn snapshot_data(raw_template: &Value) -> Value {
    let mut template = match raw_template {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    template.insert(
        PATCH_DIRECTIVE_KEY.to_string(),
        Value::String(PATCH_DIRECTIVE_REPLACE.to_string()),
    );
    let mut spec = Map::new();
    spec.insert("template".to_string(), Value::Object(template));
    let mut root = Map::new();
    root.insert("spec".to_string(), Value::Object(spec));
    Value::Object(root)
}

/// The bytes upstream's `getPatch` produces for a DaemonSet whose served `spec.template` is
/// `raw_template` (see [`snapshot_data`]). A revision is current iff its data equals these bytes.
pub fn snapshot_patch(raw_template: &Value) -> Vec<u8> {
    go_json(&snapshot_data(raw_template)).into_bytes()
}

/// A stored revision's `data` re-encoded with [`go_json`], for a byte comparison with
/// [`snapshot_patch`].
///
/// kube-rs hands us the data already parsed, so the stored bytes cannot be compared directly as
/// upstream does. Data written by Go (kube-controller-manager or everynode via
/// [`go_json`]) re-encodes to exactly the stored bytes; data that differs from the snapshot only in
/// formatting (whitespace, key order, escaping) compares equal here although upstream would call
/// it old. **[difference]**, listed in `docs/differences.md`.
pub fn data_bytes(data: &Value) -> Vec<u8> {
    go_json(data).into_bytes()
}

/// The revision hash: 32-bit FNV-1a over `patch`, followed, when `collision_count` is `Some`, by
/// the count as a little-endian `u32` in an 8-byte buffer (all 8 bytes hashed, as upstream), as a
/// decimal string passed through [`safe_encode`].
///
/// **[difference]** (listed in `docs/differences.md`): upstream's
/// `controller.ComputeHash` hashes a `go-spew` dump of the Go `PodTemplateSpec` struct, which
/// cannot be reproduced outside Go. §12.2 explains why it need not be: pods are compared with the
/// hash label stored on the matched revision, never with a recomputed hash, so revisions created
/// by kube-controller-manager keep their hashes and no pod restarts on takeover. New revisions
/// only need a deterministic hash of the template (here: of its patch bytes) and collisionCount.
pub fn compute_hash(patch: &[u8], collision_count: Option<i32>) -> String {
    let mut hash = fnv1a_32(FNV32_OFFSET_BASIS, patch);
    if let Some(count) = collision_count {
        // Go: binary.LittleEndian.PutUint32(make([]byte, 8), uint32(count)) — the upper four
        // bytes stay zero and are hashed too.
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a_32(hash, &buf);
    }
    safe_encode(&hash.to_string())
}

/// apimachinery's `rand.SafeEncodeString`: every character `c` becomes
/// `SAFE_ENCODE_ALPHABET[c % 27]`. For decimal digits: `0123456789` → `456789bcdf`.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| char::from(SAFE_ENCODE_ALPHABET[(c as usize) % SAFE_ENCODE_ALPHABET.len()]))
        .collect()
}

fn fnv1a_32(mut hash: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(FNV32_PRIME);
    }
    hash
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Go sorts map keys with string comparison, i.e. by UTF-8 bytes, as `str::cmp` does.
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        // Fits an int64: apimachinery's json keeps it as int64, printed verbatim.
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        // u64 above i64::MAX and every non-integer: a float64 in Go.
        out.push_str(&go_float(f));
    } else {
        // Not reachable without serde_json's arbitrary_precision feature.
        out.push_str(&n.to_string());
    }
}

/// Go `encoding/json`'s float64 encoding (ES6 number-to-string style).
fn go_float(f: f64) -> String {
    if !f.is_finite() {
        // serde_json values cannot hold NaN or infinities; Go would refuse to encode them.
        return "null".to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest round-trip digits and decimal exponent, from Rust's `{:e}` ("-1.2345e-7").
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        // strconv 'e' format: d[.ddd]e±XX (at least two exponent digits), after which
        // encoding/json shortens "e-0X" to "e-X".
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_str = if exp < 0 {
            format!("-{}", -exp)
        } else {
            format!("+{exp:02}")
        };
        return format!("{sign}{first}{frac}e{exp_str}");
    }
    // strconv 'f' format with the shortest digits.
    let point = exp + 1; // digits before the decimal point
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point >= n {
        format!("{}{}", digits, "0".repeat((point - n) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        go_json(&v)
    }

    fn fnv_reference(bytes: &[u8]) -> u32 {
        fnv1a_32(FNV32_OFFSET_BASIS, bytes)
    }

    // ---- go_json: structure -------------------------------------------------------------

    #[test]
    fn scalars() {
        assert_eq!(enc(json!(null)), "null");
        assert_eq!(enc(json!(true)), "true");
        assert_eq!(enc(json!(false)), "false");
        assert_eq!(enc(json!("x")), "\"x\"");
        assert_eq!(enc(json!(0)), "0");
        assert_eq!(enc(json!(-7)), "-7");
    }

    #[test]
    fn keys_sorted_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"z":1,"a":{"y":[{"d":1,"c":2}],"b":{"q":1,"p":2}},"m":null}"#)
                .unwrap();
        assert_eq!(
            enc(v),
            r#"{"a":{"b":{"p":2,"q":1},"y":[{"c":2,"d":1}]},"m":null,"z":1}"#
        );
    }

    #[test]
    fn keys_sorted_by_bytes_not_case_or_locale() {
        let v = json!({"b": 1, "B": 2, "$patch": 3, "_x": 4, "é": 5, "e": 6, "a1": 7, "a": 8});
        // '$' 0x24 < 'B' 0x42 < '_' 0x5f < 'a' < "a1" < 'b' < 'e' < 'é' (0xc3 0xa9)
        assert_eq!(
            enc(v),
            r#"{"$patch":3,"B":2,"_x":4,"a":8,"a1":7,"b":1,"e":6,"é":5}"#
        );
    }

    #[test]
    fn no_whitespace_and_arrays_keep_order() {
        assert_eq!(enc(json!([3, 1, 2, "b", "a"])), r#"[3,1,2,"b","a"]"#);
        assert_eq!(
            enc(json!({"args": ["--z", "--a"], "k": [ {"b":1}, {"a":1} ]})),
            r#"{"args":["--z","--a"],"k":[{"b":1},{"a":1}]}"#
        );
    }

    #[test]
    fn empty_object_and_array() {
        assert_eq!(enc(json!({})), "{}");
        assert_eq!(enc(json!([])), "[]");
        assert_eq!(
            enc(json!({"a": {}, "b": [], "c": [{}, []]})),
            r#"{"a":{},"b":[],"c":[{},[]]}"#
        );
    }

    #[test]
    fn null_and_empty_fields_preserved() {
        let v = json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "resources": {}}]}
        });
        assert_eq!(
            enc(v),
            r#"{"metadata":{"creationTimestamp":null,"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","resources":{}}]}}"#
        );
    }

    // ---- go_json: strings ---------------------------------------------------------------

    #[test]
    fn escapes_quote_and_backslash() {
        assert_eq!(enc(json!("a\"b\\c")), r#""a\"b\\c""#);
    }

    #[test]
    fn escapes_short_control_characters() {
        assert_eq!(enc(json!("\n")), r#""\n""#);
        assert_eq!(enc(json!("\r")), r#""\r""#);
        assert_eq!(enc(json!("\t")), r#""\t""#);
        // Go >= 1.22.
        assert_eq!(enc(json!("\u{8}")), r#""\b""#);
        assert_eq!(enc(json!("\u{c}")), r#""\f""#);
    }

    #[test]
    fn escapes_other_control_characters_as_lowercase_hex() {
        assert_eq!(enc(json!("\u{0}")), r#""\u0000""#);
        assert_eq!(enc(json!("\u{1}")), r#""\u0001""#);
        assert_eq!(enc(json!("\u{b}")), r#""\u000b""#);
        assert_eq!(enc(json!("\u{1b}")), r#""\u001b""#);
        assert_eq!(enc(json!("\u{1f}")), r#""\u001f""#);
        // DEL is not escaped by Go.
        assert_eq!(enc(json!("\u{7f}")), "\"\u{7f}\"");
    }

    #[test]
    fn escapes_html_characters() {
        assert_eq!(enc(json!("<a>&")), r#""\u003ca\u003e\u0026""#);
        assert_eq!(
            enc(json!("if [ $a -gt 1 ] && echo ok > /dev/null")),
            r#""if [ $a -gt 1 ] \u0026\u0026 echo ok \u003e /dev/null""#
        );
    }

    #[test]
    fn escapes_line_and_paragraph_separators() {
        assert_eq!(enc(json!("a\u{2028}b\u{2029}c")), r#""a\u2028b\u2029c""#);
    }

    #[test]
    fn does_not_escape_slash_or_other_unicode() {
        assert_eq!(enc(json!("a/b")), r#""a/b""#);
        assert_eq!(
            enc(json!("héllo 世界 🚀 \u{2027}\u{202a}")),
            "\"héllo 世界 🚀 \u{2027}\u{202a}\""
        );
        assert_eq!(enc(json!("'single'")), r#""'single'""#);
    }

    #[test]
    fn escapes_keys_too() {
        assert_eq!(enc(json!({"a<b": "\n"})), r#"{"a\u003cb":"\n"}"#);
    }

    // ---- go_json: numbers ---------------------------------------------------------------

    #[test]
    fn integers_in_int64_range_unchanged() {
        assert_eq!(enc(json!(30)), "30");
        assert_eq!(enc(json!(9007199254740993_i64)), "9007199254740993"); // 2^53 + 1, exact
        assert_eq!(enc(json!(i64::MAX)), "9223372036854775807");
        assert_eq!(enc(json!(i64::MIN)), "-9223372036854775808");
    }

    #[test]
    fn integers_beyond_int64_become_float64() {
        assert_eq!(enc(json!(u64::MAX)), "18446744073709552000");
        assert_eq!(
            enc(json!(10_000_000_000_000_000_000_u64)),
            "10000000000000000000"
        );
        let big: Value = serde_json::from_str("1000000000000000000000").unwrap();
        assert_eq!(enc(big), "1e+21");
        let neg: Value = serde_json::from_str("-99999999999999999999").unwrap();
        assert_eq!(enc(neg), "-100000000000000000000");
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(enc(json!(1.0)), "1");
        assert_eq!(enc(json!(1.5)), "1.5");
        assert_eq!(enc(json!(-0.25)), "-0.25");
        assert_eq!(enc(json!(0.1)), "0.1");
        assert_eq!(enc(json!(123.456)), "123.456");
        assert_eq!(enc(json!(0.000001)), "0.000001");
        assert_eq!(enc(json!(0.0000001)), "1e-7");
        assert_eq!(enc(json!(1.5e-10)), "1.5e-10");
        assert_eq!(enc(json!(1e20)), "100000000000000000000");
        assert_eq!(enc(json!(1e21)), "1e+21");
        assert_eq!(enc(json!(1.2345e300)), "1.2345e+300");
        assert_eq!(enc(json!(-2.5e-300)), "-2.5e-300");
        assert_eq!(enc(json!(0.0)), "0");
        let exp: Value = serde_json::from_str("1e2").unwrap();
        assert_eq!(enc(exp), "100");
    }

    #[test]
    fn encoding_is_idempotent_through_a_parse() {
        let v = json!({
            "s": "<&>\u{2028}\n\u{1}é",
            "n": [0, -1, i64::MAX, u64::MAX, 1.5, 1e21, 1e-7],
            "o": {"b": null, "a": [{}]}
        });
        let once = go_json(&v);
        let again = go_json(&serde_json::from_str(&once).unwrap());
        assert_eq!(once, again);
    }

    // ---- snapshot_patch / data_bytes ----------------------------------------------------

    #[test]
    fn snapshot_patch_golden() {
        let template: Value = serde_json::from_str(
            r#"{
              "metadata": {"labels": {"name": "foo"}, "creationTimestamp": null},
              "spec": {
                "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "foo", "image": "foo/bar", "resources": {},
                                "command": ["sh", "-c", "a && b > /x"]}],
                "restartPolicy": "Always"
              }
            }"#,
        )
        .unwrap();
        let patch = snapshot_patch(&template);
        assert_eq!(
            String::from_utf8(patch).unwrap(),
            concat!(
                r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"name":"foo"}},"#,
                r#""spec":{"containers":[{"command":["sh","-c","a \u0026\u0026 b \u003e /x"],"image":"foo/bar","name":"foo","resources":{}}],"#,
                r#""restartPolicy":"Always","terminationGracePeriodSeconds":30}}}}"#
            )
        );
    }

    #[test]
    fn snapshot_patch_does_not_modify_input_and_replaces_existing_directive() {
        let template = json!({"metadata": {}, "$patch": "merge"});
        let before = template.clone();
        let patch = snapshot_patch(&template);
        assert_eq!(template, before);
        assert_eq!(
            String::from_utf8(patch).unwrap(),
            r#"{"spec":{"template":{"$patch":"replace","metadata":{}}}}"#
        );
    }

    #[test]
    fn snapshot_patch_of_non_object_is_an_empty_template() {
        assert_eq!(
            snapshot_patch(&Value::Null),
            br#"{"spec":{"template":{"$patch":"replace"}}}"#.to_vec()
        );
    }

    #[test]
    fn data_bytes_of_stored_go_data_equals_snapshot_patch() {
        let template = json!({"metadata": {"labels": {"a": "<b>"}}, "spec": {"containers": []}});
        let patch = snapshot_patch(&template);
        // What the API server serves back for a revision kube-controller-manager wrote.
        let served: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(data_bytes(&served), patch);
        assert_eq!(data_bytes(&snapshot_data(&template)), patch);
    }

    #[test]
    fn data_bytes_differs_for_a_different_template() {
        let a = snapshot_patch(&json!({"spec": {"containers": [{"image": "a"}]}}));
        let stored = snapshot_data(&json!({"spec": {"containers": [{"image": "b"}]}}));
        assert_ne!(data_bytes(&stored), a);
    }

    /// Cross-checked against Go 1.26: apimachinery-style decode (`UseNumber`, int64 where it
    /// fits, float64 otherwise), add `"$patch":"replace"`, `json.Marshal`; and `hash/fnv` over
    /// the output plus the 8-byte collision-count buffer (None, Some(0), Some(7)).
    #[test]
    fn golden_against_go_encoding_json() {
        let input = concat!(
            r#"{"spec":{"template":{"metadata":{"creationTimestamp":null,"labels":{"Z":"1","a":"2","é":"3"#,
            r#"","$x":"4","_":"5"}},"spec":{"containers":[{"name":"c","resources":{},"args":["\u0000\u000"#,
            r#"1\u0007\b\t\n\u000b\f\r\u000e\u001f\u007f","<>&'\"\\/","\u2028\u2029\u2027é世界🚀"]}]},"nums""#,
            r#":[0,30,-7,9007199254740993,9223372036854775807,-9223372036854775808,9223372036854775808,18"#,
            r#"446744073709551615,10000000000000000000,1e21,1e20,100000000000000000000,1.0,0.1,1e-7,0.000"#,
            r#"001,123456789012345678901234567890,-1.5e-10,5e-324,1.7976931348623157e308,1E2,2.5,123.456,"#,
            r#"-0.0,0.3]}}}"#
        );
        let expected = concat!(
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"$x"#,
            r#"":"4","Z":"1","_":"5","a":"2","é":"3"}},"nums":[0,30,-7,9007199254740993,92233720368547758"#,
            r#"07,-9223372036854775808,9223372036854776000,18446744073709552000,10000000000000000000,1e+2"#,
            r#"1,100000000000000000000,100000000000000000000,1,0.1,1e-7,0.000001,1.2345678901234568e+29,-"#,
            r#"1.5e-10,5e-324,1.7976931348623157e+308,100,2.5,123.456,-0,0.3],"spec":{"containers":[{"arg"#,
            r#"s":["\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001f"#,
            "\u{7f}",
            r#"","\u003c\u003e\u0026'\"\\/","\u2028\u2029‧é世界🚀"],"name":"c","resources":{}}]}}}}"#
        );
        let v: Value = serde_json::from_str(input).unwrap();
        let patch = snapshot_patch(&v["spec"]["template"]);
        assert_eq!(String::from_utf8(patch.clone()).unwrap(), expected);
        assert_eq!(fnv_reference(&patch), 1_403_445_514);
        assert_eq!(compute_hash(&patch, None), safe_encode("1403445514"));
        assert_eq!(compute_hash(&patch, Some(0)), safe_encode("2630858826"));
        assert_eq!(compute_hash(&patch, Some(7)), safe_encode("3035878829"));
        assert_eq!(compute_hash(&patch, None), "5847889958");
    }

    // ---- hashing ------------------------------------------------------------------------

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv_reference(b""), 0x811c_9dc5);
        assert_eq!(fnv_reference(b"a"), 0xe40c_292c);
        assert_eq!(fnv_reference(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encode_alphabet() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(safe_encode(""), "");
        // Same as SafeEncodeString for arbitrary characters: index = code point % 27.
        assert_eq!(safe_encode("a"), "v"); // 97 % 27 = 16
        assert_eq!(safe_encode("b"), "w"); // 98 % 27 = 17
    }

    #[test]
    fn compute_hash_is_safe_encoded_decimal_fnv() {
        let h = compute_hash(b"foobar", None);
        assert_eq!(h, safe_encode(&0xbf9c_f968_u32.to_string()));
        assert!(h.chars().all(|c| "456789bcdf".contains(c)));
    }

    #[test]
    fn compute_hash_is_deterministic() {
        let patch = snapshot_patch(&json!({"spec": {"containers": [{"image": "x"}]}}));
        assert_eq!(compute_hash(&patch, None), compute_hash(&patch, None));
        assert_eq!(compute_hash(&patch, Some(3)), compute_hash(&patch, Some(3)));
    }

    #[test]
    fn compute_hash_depends_on_patch() {
        assert_ne!(
            compute_hash(b"{\"a\":1}", None),
            compute_hash(b"{\"a\":2}", None)
        );
    }

    #[test]
    fn collision_count_changes_the_hash() {
        let patch = b"{}";
        let none = compute_hash(patch, None);
        let zero = compute_hash(patch, Some(0));
        let one = compute_hash(patch, Some(1));
        let two = compute_hash(patch, Some(2));
        assert_ne!(
            none, zero,
            "Some(0) hashes eight zero bytes, None hashes nothing"
        );
        assert_ne!(zero, one);
        assert_ne!(one, two);
    }

    #[test]
    fn collision_count_hashes_eight_little_endian_bytes() {
        let patch = b"tmpl";
        let mut bytes = patch.to_vec();
        bytes.extend_from_slice(&[0x02, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            compute_hash(patch, Some(0x0102)),
            safe_encode(&fnv_reference(&bytes).to_string())
        );
        // A negative count is hashed as its uint32 bit pattern, like Go's uint32(*count).
        let mut neg = patch.to_vec();
        neg.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            compute_hash(patch, Some(-1)),
            safe_encode(&fnv_reference(&neg).to_string())
        );
    }
}
