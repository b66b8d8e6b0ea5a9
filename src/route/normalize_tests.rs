#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;

fn path(t: &str) -> Result<String, RouteError> {
    normalize(t).map(|t| t.path.into_owned())
}

#[test]
fn a_normal_path_is_borrowed() {
    let t = normalize("/v1/orgs/eng?x=1").unwrap();
    assert!(matches!(t.path, Cow::Borrowed("/v1/orgs/eng")));
    assert_eq!(t.query.as_str(), "x=1");
}

#[test]
fn root_stays_root() {
    assert_eq!(path("/").unwrap(), "/");
    assert_eq!(path("//").unwrap(), "/");
    assert_eq!(path("///?a=b").unwrap(), "/");
}

#[test]
fn slash_runs_collapse_and_trailing_slash_goes() {
    assert_eq!(path("//v1///orgs//eng/").unwrap(), "/v1/orgs/eng");
    assert_eq!(path("/v1/orgs/eng/").unwrap(), "/v1/orgs/eng");
    assert_eq!(path("/v1/orgs/eng//").unwrap(), "/v1/orgs/eng");
}

#[test]
fn query_and_fragment_are_split_off() {
    let t = normalize("/a/b?c=d&e#frag?x").unwrap();
    assert_eq!(t.path, "/a/b");
    assert_eq!(t.query.as_str(), "c=d&e");
    let t = normalize("/a#frag?x=1").unwrap();
    assert_eq!(t.path, "/a");
    assert_eq!(t.query.as_str(), "");
    let t = normalize("/a?").unwrap();
    assert_eq!(t.query.as_str(), "");
}

#[test]
fn unreserved_escapes_are_decoded_others_kept_upper_case() {
    assert_eq!(path("/v1/%6Frgs/%7Euser").unwrap(), "/v1/orgs/~user");
    assert_eq!(path("/a/%41%2d%5F%2e").unwrap(), "/a/A-_.");
    assert_eq!(path("/a/b%3ac").unwrap(), "/a/b%3Ac");
    assert_eq!(path("/a/%c3%a9").unwrap(), "/a/%C3%A9");
    assert_eq!(path("/a/100%25").unwrap(), "/a/100%25");
}

#[test]
fn dot_segments_are_rejected_also_encoded() {
    for t in [
        "/a/../b",
        "/a/./b",
        "/..",
        "/.",
        "/a/..",
        "/a/%2e%2e/b",
        "/a/%2E%2e",
        "/a/.%2E/b",
        "/a/%2e/b",
        "/a//..//b",
    ] {
        assert_eq!(path(t), Err(RouteError::DotSegment), "{t}");
    }
    assert_eq!(path("/a/...").unwrap(), "/a/...");
    assert_eq!(path("/a/.b").unwrap(), "/a/.b");
    assert_eq!(path("/a/%2e%2e%2e").unwrap(), "/a/...");
}

#[test]
fn encoded_slash_backslash_and_nul_are_rejected() {
    for t in [
        "/a%2Fb", "/a%2fb", "/a/%5C", "/a/%5c..", "/a%00", "/a%0a", "/a%7F",
    ] {
        assert_eq!(path(t), Err(RouteError::ForbiddenEscape), "{t}");
    }
}

#[test]
fn malformed_escapes_are_rejected() {
    for t in ["/a%", "/a%4", "/a%zz", "/a%4g/b", "/a?x=%", "/a?x=%e"] {
        assert_eq!(path(t), Err(RouteError::InvalidEscape), "{t}");
    }
}

#[test]
fn control_non_ascii_space_backslash_and_semicolon_are_rejected() {
    for t in [
        "/a\u{0}b",
        "/a\nb",
        "/a\tb",
        "/a b",
        "/a\u{7f}",
        "/caf\u{e9}",
        "/a\\b",
        "/a/..;/b",
        "/a;x=1",
        "/a?x=\u{e9}",
        "/a?x=1 2",
        "/a?x=\r",
    ] {
        assert_eq!(path(t), Err(RouteError::InvalidCharacter), "{t:?}");
    }
    // In the query, `;` and `\` are just data.
    assert!(normalize("/a?x=1;y=2\\").is_ok());
}

#[test]
fn only_origin_form_is_accepted() {
    for t in ["", "*", "http://host/path", "https://h/", "a/b", "?x=1", "#x"] {
        assert_eq!(path(t), Err(RouteError::NotOriginForm), "{t}");
    }
}

#[test]
fn lengths_are_capped() {
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert_eq!(path(&long), Err(RouteError::PathTooLong));
    let ok = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    assert!(path(&ok).is_ok());
    let q = format!("/a?{}", "b".repeat(MAX_QUERY_LEN + 1));
    assert_eq!(path(&q), Err(RouteError::QueryTooLong));
    let many = "/a".repeat(MAX_SEGMENTS + 1);
    assert_eq!(path(&many), Err(RouteError::TooManySegments));
    assert!(path(&"/a".repeat(MAX_SEGMENTS)).is_ok());
    // Empty segments do not count.
    assert!(path(&format!("{}/a", "/".repeat(1000))).is_ok());
}

#[test]
fn query_values_are_form_decoded() {
    let q = Query("a=1&orgIdentifier=my+org&name=%41b%20c&flag&=x");
    assert_eq!(q.get("orgIdentifier").unwrap().as_deref(), Some("my org"));
    assert_eq!(q.get("name").unwrap().as_deref(), Some("Ab c"));
    assert_eq!(q.get("flag").unwrap().as_deref(), Some(""));
    assert_eq!(q.get("missing").unwrap(), None);
    assert!(matches!(q.get("a").unwrap(), Some(Cow::Borrowed("1"))));
}

#[test]
fn query_names_are_decoded_before_comparing() {
    let q = Query("org%49dentifier=eng");
    assert_eq!(q.get("orgIdentifier").unwrap().as_deref(), Some("eng"));
    // Names are case-sensitive, like JAX-RS `@QueryParam`.
    assert_eq!(Query("ORGIDENTIFIER=eng").get("orgIdentifier").unwrap(), None);
}

#[test]
fn a_repeated_parameter_with_different_values_is_ambiguous() {
    let q = Query("orgIdentifier=a&orgIdentifier=b");
    assert_eq!(
        q.get("orgIdentifier"),
        Err(RouteError::AmbiguousQuery("orgIdentifier".into()))
    );
    // Also when one spelling is encoded, or one value empty.
    let q = Query("orgIdentifier=a&org%49dentifier=b");
    assert!(q.get("orgIdentifier").is_err());
    assert!(
        Query("orgIdentifier=&orgIdentifier=b")
            .get("orgIdentifier")
            .is_err()
    );
    // The same value twice (however spelled) is fine.
    let q = Query("orgIdentifier=a+b&orgIdentifier=a%20b");
    assert_eq!(q.get("orgIdentifier").unwrap().as_deref(), Some("a b"));
}

#[test]
fn invalid_utf8_in_a_query_value_is_an_error() {
    assert_eq!(Query("x=%FF").get("x"), Err(RouteError::InvalidUtf8));
}

#[test]
fn pairs_lists_every_pair_in_order() {
    let pairs = Query("a=1&b=x+y&&c").pairs();
    let got: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&**n, &**v)).collect();
    assert_eq!(got, [("a", "1"), ("b", "x y"), ("c", "")]);
}

#[test]
fn captures_are_percent_decoded() {
    assert_eq!(decode_capture("a%40b").unwrap(), "a@b");
    assert!(matches!(decode_capture("plain").unwrap(), Cow::Borrowed("plain")));
    assert_eq!(decode_capture("%FF"), Err(RouteError::InvalidUtf8));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_and_is_idempotent(s in "[/a-zA-Z0-9%.~_;?#+&=\\-\\\\ \u{0}\u{7f}\u{e9}]{0,64}") {
        if let Ok(t) = normalize(&s) {
            let again = normalize(&t.path).expect("a normalised path normalises");
            prop_assert_eq!(&again.path, &t.path);
            prop_assert_eq!(again.query.as_str(), "");
            prop_assert!(t.path.starts_with('/'));
            prop_assert!(!t.path.contains("//"));
            prop_assert!(t.path == "/" || !t.path.ends_with('/'));
        }
    }

    #[test]
    fn escapes_of_unreserved_bytes_decode(seg in "[a-zA-Z0-9_~-]{1,16}") {
        let encoded: String = seg.bytes().map(|b| format!("%{b:02x}")).collect();
        let target = format!("/x/{encoded}");
        let want = format!("/x/{seg}");
        let t = normalize(&target).unwrap();
        prop_assert_eq!(t.path.as_ref(), want.as_str());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = normalize(&s);
        let _ = Query(&s).get("orgIdentifier");
        let _ = Query(&s).pairs();
    }
}
