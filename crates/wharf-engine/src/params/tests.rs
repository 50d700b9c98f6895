//! Tests for input validation: the Container API's messages, and properties of the id grammar.

use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Result<Labels, ParamError> {
    Labels::new(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect())
}

#[test]
fn label_messages_match_the_container_api() {
    let msg = |r: Result<Labels, ParamError>| r.unwrap_err().to_string();
    assert_eq!(msg(labels(&[("", "x")])), "Label names cannot be empty");
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("l{i}"), String::new())).collect();
    assert_eq!(msg(Labels::new(eleven)), "Cannot specify more than 10 container labels");
    assert_eq!(
        msg(labels(&[(&"n".repeat(17), "")])),
        "Label names cannot exceed 16 bytes (index 0)"
    );
    assert_eq!(
        msg(labels(&[("n", &"v".repeat(65))])),
        "Label values cannot exceed 64 bytes (index 0)"
    );
    assert_eq!(
        msg(labels(&[("a\u{1}", "")])),
        "Label names cannot contain control characters (index 0)"
    );
    assert_eq!(
        msg(labels(&[("a", "\n")])),
        "Label values cannot contain control characters (index 0)"
    );
    assert!(msg(labels(&[("a", "1"), ("a", "2")])).contains("appears twice"));
}

#[test]
fn labels_accept_the_edges() {
    let max_name = "n".repeat(16);
    let max_value = "v".repeat(64);
    let ok = labels(&[(&max_name, &max_value), ("ünï", "cödé"), ("a", "b=c")]).unwrap();
    let got: Vec<_> = ok.iter().collect();
    assert_eq!(got[2], ("a", "b=c"));
}

#[test]
fn image_messages_match_the_container_api() {
    for bad in ["bad\nimage", "bad image", "bad\u{80}image"] {
        assert_eq!(
            ImageRef::new(bad).unwrap_err().to_string(),
            "Container image reference must contain only non-space printable ASCII characters"
        );
    }
    assert_eq!(
        ImageRef::new(&"a".repeat(4097)).unwrap_err().to_string(),
        "Container image reference cannot exceed 4096 bytes"
    );
    assert!(ImageRef::new(&"a".repeat(4096)).is_ok());
}

#[test]
fn shape_messages_match_the_container_api() {
    let msg = |r: Result<Shape, ParamError>| r.unwrap_err().to_string();
    for v in [0.0, -1.0, f64::INFINITY, f64::NAN] {
        assert_eq!(
            msg(Shape::new(Some(v), None, None)),
            "Container resource vcpu must be a finite number greater than 0"
        );
        assert_eq!(
            msg(Shape::new(None, Some(v), None)),
            "Container resource memoryMib must be a finite number greater than 0"
        );
    }
    assert_eq!(
        msg(Shape::new(None, None, Some(0.5))),
        "Container resource diskMb must be an integer"
    );
    assert_eq!(
        msg(Shape::new(None, Some(2f64.powi(53)), None)),
        "Container resource memoryMib exceeds Number.MAX_SAFE_INTEGER"
    );
    assert_eq!(Shape::new(Some(0.5), Some(256.0), None).unwrap().memory_mib, Some(256));
}

#[test]
fn env_entries() {
    assert_eq!(EnvVar::parse("A=b=c").unwrap().value(), "b=c");
    assert_eq!(EnvVar::parse("EMPTY=").unwrap().value(), "");
    for bad in ["NOEQUALS", "=value", "HAS SPACE=1", "NUL=\0"] {
        assert!(EnvVar::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn signals() {
    assert_eq!(Signal::parse("TERM").unwrap().number(), 15);
    assert_eq!(Signal::parse("sigkill").unwrap().number(), 9);
    assert_eq!(Signal::parse("40").unwrap().number(), 40);
    assert_eq!(Signal::parse("RTMIN+2").unwrap().number(), 36);
    assert_eq!(Signal::parse("SYS").unwrap().number(), 31);
    for bad in ["0", "65", "-1", "NOPE"] {
        assert!(Signal::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn ports_and_timeouts() {
    assert!(AppPort::new(0).is_err());
    assert!(AppPort::new(65536).is_err());
    assert_eq!(AppPort::new(8080).unwrap().number(), 8080);
    assert!(timeout_ms("setInactivityTimeout()", 0).is_err());
    assert!(timeout_ms("setInactivityTimeout()", -5).is_err());
    assert_eq!(timeout_ms("x", 1500).unwrap(), Duration::from_millis(1500));
}

proptest! {
    #[test]
    fn ids_of_the_grammar_are_accepted(raw in "[A-Za-z0-9_.-]{1,128}") {
        let id = ContainerId::new(&raw).unwrap();
        prop_assert_eq!(id.as_str(), raw.as_str());
    }

    #[test]
    fn ids_outside_the_grammar_are_refused(raw in ".*[^A-Za-z0-9_.-].*") {
        prop_assert!(ContainerId::new(&raw).is_err());
    }

    #[test]
    fn label_validation_never_panics(pairs in proptest::collection::vec((".{0,20}", ".{0,70}"), 0..12)) {
        let _ = Labels::new(pairs);
    }
}
