//! Protocol tests: the spec's worked examples byte for byte, then property tests that every
//! codec round-trips and that no input makes one panic.

use http::{HeaderMap, HeaderValue, Method, Uri};
use proptest::prelude::*;
use url::Url;

use super::redirect::{DEFAULT_BUNDLE_BASE, eval_path, next_request};
use super::*;

fn v1(path: &str, referrer: &str, raw: &str) -> Request {
    Request::V1(V1Request::new(path, referrer, raw, ResolveMethod::Import))
}

fn decode(request: &Request) -> Result<Request, RequestError> {
    let http = request.to_http()?;
    Request::from_http(http.method(), http.uri(), http.headers(), http.body())
}

#[test]
fn v1_wire_form_matches_workerd() {
    let r = v1("/legacy.js", "/legacy-main.js", "./legacy.js");
    let http = r.to_http().unwrap();
    assert_eq!(http.method(), Method::GET);
    assert_eq!(
        http.uri().to_string(),
        "/?specifier=%2Flegacy.js&referrer=%2Flegacy-main.js&rawSpecifier=.%2Flegacy.js"
    );
    assert_eq!(http.headers()["host"], "localhost");
    assert_eq!(http.headers()[RESOLVE_METHOD_HEADER], "import");
    assert!(http.headers().get("content-length").is_none());
    assert_eq!(form::encode("a b+c*~"), "a+b%2Bc*%7E");
}

#[test]
fn v1_prefix_rule_and_effective_specifier() {
    assert_eq!(v1("/a/b/node:fs", "", "").specifier(), "node:fs");
    assert_eq!(v1("/node:fs", "", "").effective_specifier(), "node:fs");
    assert_eq!(v1("/a/b.js", "", "").effective_specifier(), "a/b.js");
    assert_eq!(v1("/a/node:x/b.js", "", "").specifier(), "/a/node:x/b.js");
}

#[test]
fn v2_wire_form_omits_unset_keys() {
    let mut r = V2Request {
        kind: V2Kind::Import,
        specifier: "file:///bundle/value.json".to_owned(),
        raw_specifier: Some("./value.json".to_owned()),
        referrer: "file:///bundle/nmr-main.js".to_owned(),
        attributes: vec![Attribute { name: "type".to_owned(), value: "json".to_owned() }],
    };
    let body = Request::V2(r.clone()).to_http().unwrap().into_body();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"type":"import","specifier":"file:///bundle/value.json","rawSpecifier":"./value.json","referrer":"file:///bundle/nmr-main.js","attributes":[{"name":"type","value":"json"}]}"#
    );
    (r.raw_specifier, r.attributes) = (None, Vec::new());
    let http = Request::V2(r).to_http().unwrap();
    assert_eq!(http.headers()["content-length"], "97");
    assert_eq!(
        std::str::from_utf8(http.body()).unwrap(),
        r#"{"type":"import","specifier":"file:///bundle/value.json","referrer":"file:///bundle/nmr-main.js"}"#
    );
}

#[test]
fn requests_that_are_not_fallback_requests() {
    let get = |q: &str, m: Option<&'static str>| {
        let mut headers = HeaderMap::new();
        if let Some(m) = m {
            headers.insert(RESOLVE_METHOD_HEADER, HeaderValue::from_static(m));
        }
        Request::from_http(&Method::GET, &Uri::try_from(q).unwrap(), &headers, b"")
    };
    assert!(matches!(get("/?specifier=%2Fa", None), Err(RequestError::NotFallback(_))));
    assert!(matches!(get("/?specifier=", Some("import")), Err(RequestError::MissingSpecifier)));
    assert!(matches!(get("/?x=1", Some("require")), Err(RequestError::MissingSpecifier)));
    assert!(matches!(get("/?specifier=a", Some("eval")), Err(RequestError::BadResolveMethod(_))));
    let Ok(Request::V1(r)) = get("/?specifier=%2Fa&specifier=%2Fb", Some("Require")) else {
        panic!("a V1 request")
    };
    assert_eq!((r.specifier.as_str(), r.referrer.as_str()), ("/a", ""));
    assert_eq!(r.method, ResolveMethod::Require);
    let post = |body: &str| {
        Request::from_http(
            &Method::POST,
            &Uri::from_static("/"),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    };
    assert!(matches!(post("{"), Err(RequestError::BadBody(_))));
    assert!(matches!(post(r#"{"type":"import"}"#), Err(RequestError::BadBody(_))));
    assert!(matches!(post(r#"{"type":"eval","specifier":"x"}"#), Err(RequestError::BadBody(_))));
    let Ok(Request::V2(r)) = post(r#"{"specifier":"file:///bundle/a.js","extra":1}"#) else {
        panic!("a V2 request")
    };
    assert_eq!((r.kind, r.referrer.as_str(), r.raw_specifier), (V2Kind::Import, "", None));
}

fn classify(status: u16, location: Option<&str>, body: &str) -> Result<Answer, AnswerError> {
    Answer::from_http(status, location.map(str::as_bytes), body.as_bytes(), "a/b.js")
}

fn module(kind: ModuleKind) -> Result<Answer, AnswerError> {
    Ok(Answer::Module(Module { name: Some("a/b.js".to_owned()), kind }))
}

#[test]
fn answers_are_classified_like_workerd() {
    assert_eq!(classify(301, Some("/c.js"), ""), Ok(Answer::Redirect("/c.js".to_owned())));
    assert_eq!(classify(301, None, "x"), Err(AnswerError::RedirectWithoutLocation));
    for status in [302, 307, 308, 404, 500, 204] {
        let Ok(Answer::NotFound(nf)) = classify(status, Some("/c.js"), "nope") else {
            panic!("{status} is not found")
        };
        assert_eq!((nf.status, nf.message.as_str()), (status, "nope"));
    }
    assert!(matches!(classify(200, None, ""), Ok(Answer::NotFound(NotFound { status: 200, .. }))));
    assert_eq!(classify(200, None, "{}"), module(ModuleKind::EsModule(String::new())));
    assert_eq!(
        classify(200, None, r#"{"text":"a","unknown":[1,{}],"esModule":"b","text":"c"}"#),
        module(ModuleKind::Text("c".to_owned()))
    );
    assert_eq!(
        classify(200, None, r#"{"namedExports":["x"],"commonJsModule":"m","name":"a/b.js"}"#),
        module(ModuleKind::CommonJs {
            source: "m".to_owned(),
            named_exports: vec!["x".to_owned()]
        })
    );
    assert_eq!(classify(200, None, r#"{"data":[0,255]}"#), module(ModuleKind::Data(vec![0, 255])));
    for bad in [r#"{"data":[256]}"#, r#"{"wasm":"AGFzbQ=="}"#, r#"{"json":{}}"#, "{", "[]", "{} x"]
    {
        assert!(matches!(classify(200, None, bad), Err(AnswerError::Json(_))), "{bad}");
    }
    assert_eq!(
        classify(200, None, r#"{"pythonModule":"x"}"#),
        Err(AnswerError::Unsupported("pythonModule"))
    );
    assert!(matches!(
        classify(200, None, r#"{"name":"/a/b.js","esModule":""}"#),
        Err(AnswerError::NameMismatch { .. })
    ));
}

#[test]
fn server_answers_carry_content_length() {
    let response = Answer::Redirect("/c.js".to_owned()).to_http().unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(response.headers()["location"], "/c.js");
    assert!(Answer::Redirect("bad\nlocation".to_owned()).to_http().is_err());
    let nf = Answer::NotFound(NotFound::new(200, b"x")).to_http().unwrap();
    assert_eq!(
        (nf.status().as_u16(), nf.headers()["content-length"].to_str().unwrap()),
        (404, "1")
    );
}

#[test]
fn redirects_follow_each_version_rules() {
    assert_eq!(eval_path("/a/b/c.js", "d.js"), "/a/b/d.js");
    assert_eq!(eval_path("/a/b/c.js", "../d.js"), "/a/d.js");
    assert_eq!(eval_path("/a/b/c.js", "/x/./y/../z.js"), "/x/z.js");
    assert_eq!(eval_path("node:fs", "fs.js"), "/fs.js");
    assert_eq!(eval_path("/a", "../../.."), "/");
    let base = Url::parse(DEFAULT_BUNDLE_BASE).unwrap();
    let r = v1("/a/b.js", "/main.js", "b");
    let Ok(Request::V1(next)) = next_request(&r, "c/node:fs", &base) else { panic!("V1") };
    assert_eq!((next.specifier.as_str(), next.raw_specifier.as_str()), ("node:fs", "b"));
    let r = Request::V2(V2Request {
        kind: V2Kind::Require,
        specifier: "file:///bundle/x/y.js".to_owned(),
        raw_specifier: None,
        referrer: "file:///bundle/main.js".to_owned(),
        attributes: Vec::new(),
    });
    let Ok(Request::V2(next)) = next_request(&r, "z/w.js", &base) else { panic!("V2") };
    assert_eq!(next.specifier, "file:///bundle/z/w.js");
    assert_eq!(next.kind, V2Kind::Require);
}

fn module_kind() -> impl Strategy<Value = ModuleKind> {
    prop_oneof![
        any::<String>().prop_map(ModuleKind::EsModule),
        (any::<String>(), prop::collection::vec(any::<String>(), 0..4))
            .prop_map(|(source, named_exports)| ModuleKind::CommonJs { source, named_exports }),
        any::<String>().prop_map(ModuleKind::Text),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(ModuleKind::Data),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(ModuleKind::Wasm),
        any::<String>().prop_map(ModuleKind::Json),
    ]
}

fn v2_request() -> impl Strategy<Value = V2Request> {
    let kind = prop_oneof![Just(V2Kind::Import), Just(V2Kind::Require), Just(V2Kind::Internal)];
    let attribute =
        (any::<String>(), any::<String>()).prop_map(|(name, value)| Attribute { name, value });
    (
        kind,
        ".+",
        prop::option::of(any::<String>()),
        any::<String>(),
        prop::collection::vec(attribute, 0..3),
    )
        .prop_map(|(kind, specifier, raw_specifier, referrer, attributes)| V2Request {
            kind,
            specifier,
            raw_specifier,
            referrer,
            attributes,
        })
}

proptest! {
    #[test]
    fn form_round_trips(text in any::<String>()) {
        let encoded = form::encode(&text);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.*+%".contains(&b)));
        prop_assert_eq!(form::decode(&encoded), text);
    }

    #[test]
    fn v1_requests_round_trip(
        path in any::<String>(), referrer in any::<String>(), raw in any::<String>(), require in any::<bool>()
    ) {
        let method = if require { ResolveMethod::Require } else { ResolveMethod::Import };
        let request = Request::V1(V1Request::new(&path, &referrer, &raw, method));
        prop_assume!(!request.specifier().is_empty());
        prop_assert_eq!(decode(&request), Ok(request));
    }

    #[test]
    fn v2_requests_round_trip(request in v2_request()) {
        let request = Request::V2(request);
        prop_assert_eq!(decode(&request), Ok(request));
    }

    #[test]
    fn modules_round_trip(name in prop::option::of(any::<String>()), kind in module_kind()) {
        let module = Module { name, kind };
        prop_assert_eq!(Module::decode(&module.encode().unwrap()), Ok(module));
    }

    #[test]
    fn answers_round_trip_over_http(kind in module_kind(), location in "[!-~]{1,40}", status in 400u16..600) {
        let answers = [
            Answer::Module(Module { name: None, kind }),
            Answer::Redirect(location),
            Answer::NotFound(NotFound { status, message: "no".to_owned() }),
        ];
        for answer in answers {
            let http = answer.to_http().unwrap();
            let location = http.headers().get("location").map(|l| l.as_bytes());
            let back = Answer::from_http(http.status().as_u16(), location, http.body(), "x").unwrap();
            let expected = match answer {
                Answer::Module(m) => Answer::Module(Module { name: Some("x".to_owned()), ..m }),
                other => other,
            };
            prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn no_request_bytes_panic(
        post in any::<bool>(), target in any::<String>(), header in any::<Vec<u8>>(), body in any::<Vec<u8>>()
    ) {
        let method = if post { Method::POST } else { Method::GET };
        let uri = Uri::try_from(target.as_str()).unwrap_or_else(|_| Uri::from_static("/"));
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&header) {
            headers.insert(RESOLVE_METHOD_HEADER, value);
        }
        let _ = Request::from_http(&method, &uri, &headers, &body);
        let _ = form::decode(&target);
    }

    #[test]
    fn no_answer_bytes_panic(
        status in any::<u16>(), location in prop::option::of(any::<Vec<u8>>()), body in any::<Vec<u8>>(), json in any::<String>()
    ) {
        let _ = Answer::from_http(status, location.as_deref(), &body, "x");
        let _ = Answer::from_http(200, None, json.as_bytes(), "x");
        let _ = Module::decode(&body);
    }

    #[test]
    fn json_shaped_answers_never_panic(keys in prop::collection::vec(("[a-zA-Z]{0,14}", "(\"[a-z]*\"|\\[[0-9,]*\\]|[0-9]+|null|\\{\\})"), 0..6)) {
        let body: Vec<String> = keys.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let _ = Module::decode(format!("{{{}}}", body.join(",")).as_bytes());
    }

    #[test]
    fn redirects_never_panic(specifier in any::<String>(), location in any::<String>()) {
        let base = Url::parse(DEFAULT_BUNDLE_BASE).unwrap();
        let path = eval_path(&specifier, &location);
        prop_assert!(path.starts_with('/'));
        let _ = next_request(&v1(&specifier, "", ""), &location, &base);
    }
}
