use super::*;

#[test]
fn yaml_and_json_both_parse() {
    let yaml = "checks:\n  - name: smoke\n    kind: invoke\n    payload: {ping: true}\n    expect: {status: 200}\n    timeout: 2s\n";
    let set = parse_checks(yaml).unwrap();
    assert_eq!(set.checks[0].timeout, Duration::from_secs(2));
    assert!(set.checks[0].required);
    let json = r#"{"checks":[{"name":"smoke","kind":"invoke"}]}"#;
    assert_eq!(parse_checks(json).unwrap().checks[0].name, "smoke");
}

#[test]
fn errors_name_the_check_and_field() {
    let err =
        parse_checks(r#"{"checks":[{"name":"smoke","kind":"invoke","timout":"2s"}]}"#).unwrap_err();
    assert!(err.contains("smoke") && err.contains("timout"), "{err}");
    let err = parse_checks(r#"{"checks":[{"name":"health","kind":"http","url":"ftp://x"}]}"#)
        .unwrap_err();
    assert!(err.contains("\"health\"") && err.contains("url"), "{err}");
    let err = parse_checks(
        r#"{"checks":[{"name":"health","kind":"http","url":"https://x","expect":{"stauts":200}}]}"#,
    )
    .unwrap_err();
    assert!(err.contains("health") && err.contains("stauts"), "{err}");
    let err = parse_checks(r#"{"checks":[{"name":"h","kind":"http","url":"https://x","headers":{"Authorization":"Bearer abc"}}]}"#).unwrap_err();
    assert!(err.contains("secretHeaders"), "{err}");
    let err =
        parse_checks(r#"{"checks":[{"name":"a","kind":"invoke"},{"name":"a","kind":"invoke"}]}"#)
            .unwrap_err();
    assert!(err.contains("used by another check"), "{err}");
    let err = parse_checks(r#"{"checks":[{"name":"a","kind":"teleport"}]}"#).unwrap_err();
    assert!(err.contains("teleport"), "{err}");
}

#[test]
fn checks_run_only_for_the_functions_they_name() {
    let set = parse_checks(
        r#"{"checks":[
            {"name":"smoke","kind":"invoke","functions":["cart"]},
            {"name":"smoke","kind":"invoke","functions":["arn:aws:lambda:eu-west-1:123456789012:function:pricing:live"]},
            {"name":"shared","kind":"invoke"},
            {"name":"cart-only","kind":"invoke","functions":["cart","basket"]}
        ]}"#,
    )
    .unwrap();
    let names = |f: &str| -> Vec<(String, Option<Vec<String>>)> {
        set.for_function(f)
            .unwrap()
            .checks
            .into_iter()
            .map(|c| (c.name, c.functions))
            .collect()
    };
    // Table: the deployed function (name or ARN) → the checks that run.
    let cart = names("cart");
    assert_eq!(cart.len(), 3, "{cart:?}");
    assert_eq!(cart[0].1.as_deref(), Some(&["cart".to_string()][..]));
    assert_eq!(
        names("arn:aws:lambda:eu-west-1:123456789012:function:cart").len(),
        3
    );
    let pricing = names("pricing");
    assert_eq!(
        pricing.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["smoke", "shared"]
    );
    assert_eq!(names("basket").len(), 2);
    assert_eq!(
        names("other").len(),
        1,
        "only the check without `functions`"
    );

    let only_named = parse_checks(
        r#"{"concurrency":2,"checks":[{"name":"smoke","kind":"invoke","functions":["cart","pricing"]}]}"#,
    )
    .unwrap();
    let err = only_named.for_function("orders").unwrap_err();
    assert!(
        err.contains("no check applies to function orders") && err.contains("cart, pricing"),
        "{err}"
    );
    assert_eq!(only_named.for_function("pricing").unwrap().concurrency, 2);
}

#[test]
fn a_check_name_repeats_only_across_disjoint_functions() {
    for (checks, ok) in [
        (
            r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["y"]}"#,
            true,
        ),
        (
            r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["y","x"]}"#,
            false,
        ),
        (
            r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["arn:aws:lambda:us-east-1:123456789012:function:x"]}"#,
            false,
        ),
        (
            r#"{"name":"a","kind":"invoke"},{"name":"a","kind":"invoke","functions":["y"]}"#,
            false,
        ),
        (
            r#"{"name":"a","kind":"invoke","functions":["y"]},{"name":"a","kind":"invoke"}"#,
            false,
        ),
    ] {
        let result = parse_checks(&format!(r#"{{"checks":[{checks}]}}"#));
        assert_eq!(result.is_ok(), ok, "{checks}: {result:?}");
        if let Err(e) = result {
            assert!(e.contains("checks[1]") && e.contains("name"), "{e}");
        }
    }
    let err =
        parse_checks(r#"{"checks":[{"name":"a","kind":"invoke","functions":[]}]}"#).unwrap_err();
    assert!(
        err.contains("checks[0] (\"a\").functions: is empty"),
        "{err}"
    );
    let err = parse_checks(r#"{"checks":[{"name":"a","kind":"invoke","functions":["x"," "]}]}"#)
        .unwrap_err();
    assert!(err.contains("functions[1]: is blank"), "{err}");
}

#[test]
fn durations_that_overflow_or_exceed_a_lambda_run_are_errors_not_panics() {
    for raw in [
        "\"18446744073709551615m\"",
        "\"307445734561825861m\"",
        "\"16m\"",
        "\"99999999999999s\"",
        "18446744073709551615",
    ] {
        let text = format!(r#"{{"checks":[{{"name":"a","kind":"invoke","timeout":{raw}}}]}}"#);
        let err = parse_checks(&text).unwrap_err();
        assert!(err.contains("timeout"), "{raw}: {err}");
    }
    let err = parse_checks(r#"{"checks":[{"name":"m","kind":"metrics","window":"99999999999m"}]}"#)
        .unwrap_err();
    assert!(err.contains("window"), "{err}");
}

/// Issue 21 [10]: one duration grammar. The hooks used to refuse `1h` where shift took it.
#[test]
fn the_hooks_read_the_one_duration_grammar() {
    let parsed = parse_checks(
        r#"{"checks":[{"name":"m","kind":"metrics","window":"1h"},{"name":"i","kind":"invoke","timeout":"1500","backoff":"250ms"}]}"#,
    )
    .unwrap();
    let CheckKind::Metrics(m) = &parsed.checks[0].kind else {
        panic!()
    };
    assert_eq!(m.window, Duration::from_secs(3600));
    assert_eq!(parsed.checks[1].timeout, Duration::from_millis(1500));
    let err =
        parse_checks(r#"{"checks":[{"name":"i","kind":"invoke","timeout":"1.5s"}]}"#).unwrap_err();
    assert!(
        err.contains("timeout") && err.contains(shiftguard_common::duration::GRAMMAR),
        "{err}"
    );
}

#[test]
fn deep_or_huge_check_files_are_rejected_at_once() {
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let started = std::time::Instant::now();
    let err = parse_checks(&deep).unwrap_err();
    assert!(err.contains("nests deeper"), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // Block-style nesting as deep as the size limit allows.
    let deep_yaml: String = (0..1400).map(|i| format!("{}-\n", " ".repeat(i))).collect();
    let started = std::time::Instant::now();
    assert!(parse_checks(&deep_yaml).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let huge = format!("checks: []\n# {}", "x".repeat(MAX_CHECKS_BYTES));
    assert!(parse_checks(&huge).unwrap_err().contains("bytes"));
    // Brackets inside strings count (a stray quote must not hide nesting), generously.
    let ok = format!(
        r#"{{"checks":[{{"name":"{}","kind":"invoke"}}]}}"#,
        "[".repeat(100)
    );
    assert!(parse_checks(&ok).is_ok());
    let hidden = format!(
        "# don't\nchecks: {}{}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert!(parse_checks(&hidden).unwrap_err().contains("nests deeper"));
}

#[test]
fn judge_kinds_parse_with_their_defaults_and_reject_nonsense() {
    let set = parse_checks(
        "checks:\n  - {name: c, kind: compare}\n  - {name: l, kind: logs}\n  - {name: a, kind: artifact, codeSha256: LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=}\n",
    )
    .unwrap();
    let CheckKind::Compare(c) = &set.checks[0].kind else {
        panic!()
    };
    assert_eq!(
        (
            c.requests,
            c.confidence,
            c.latency_tolerance,
            c.error_rate_tolerance,
            c.min_samples
        ),
        (1000, 0.98, 0.2, 0.0005, 20)
    );
    assert_eq!((c.statistic.as_str(), c.window.as_secs()), ("p50", 1800));
    assert_eq!(c.inconclusive, Inconclusive::Fail);
    let bad = [
        (
            r#"{"name":"c","kind":"compare","confidence":1.0}"#,
            "confidence",
        ),
        (
            r#"{"name":"c","kind":"compare","statistic":"p100"}"#,
            "statistic",
        ),
        (
            r#"{"name":"c","kind":"compare","statistic":"Median"}"#,
            "statistic",
        ),
        (
            r#"{"name":"c","kind":"compare","statistic":"p1e1"}"#,
            "statistic",
        ),
        (
            r#"{"name":"c","kind":"compare","statistic":"p+50"}"#,
            "statistic",
        ),
        (
            r#"{"name":"c","kind":"compare","retries":2}"#,
            "not retried",
        ),
        (r#"{"name":"l","kind":"logs","pattern":" "}"#, "pattern"),
        (r#"{"name":"c","kind":"compare","requests":0}"#, "requests"),
        (
            r#"{"name":"c","kind":"compare","minSamples":1}"#,
            "minSamples",
        ),
        (
            r#"{"name":"c","kind":"compare","latencyTolerance":-0.1}"#,
            "latencyTolerance",
        ),
        (
            r#"{"name":"c","kind":"compare","errorRateTolerance":1}"#,
            "errorRateTolerance",
        ),
        (
            r#"{"name":"l","kind":"logs","maxRateMultiple":0.5}"#,
            "maxRateMultiple",
        ),
        (r#"{"name":"l","kind":"logs","minSamples":0}"#, "minSamples"),
        (r#"{"name":"a","kind":"artifact"}"#, "exactly one"),
        (
            r#"{"name":"a","kind":"artifact","codeSha256":"abc","fromEnv":"X"}"#,
            "exactly one",
        ),
        (
            r#"{"name":"a","kind":"artifact","codeSha256":"abc"}"#,
            "codeSha256",
        ),
        (
            r#"{"name":"a","kind":"artifact","imageDigest":"sha256:xyz"}"#,
            "imageDigest",
        ),
        (
            r#"{"name":"a","kind":"artifact","sameAs":{"function":"f"}}"#,
            "qualifier",
        ),
    ];
    for (check, want) in bad {
        let err = parse_checks(&format!(r#"{{"checks":[{check}]}}"#)).unwrap_err();
        assert!(err.contains(want), "{check}: {err}");
    }
}

#[test]
fn settings_the_phase_does_not_use_are_named() {
    let checks = r#"{"checks":[{"name":"c","kind":"compare","window":"45m","requests":10}]}"#;
    let cfg = HookConfig::from_vars(&[(CHECKS_VAR, checks)][..]).unwrap();
    let pre = cfg.unused_in(crate::Phase::PreTraffic);
    assert!(
        pre[0].contains("window") && !pre[0].contains("requests"),
        "{pre:?}"
    );
    assert!(pre[1].contains("below minSamples"), "{pre:?}");
    let post = cfg.unused_in(crate::Phase::PostTraffic);
    assert_eq!(post.len(), 1, "{post:?}");
    assert!(
        post[0].contains("requests") && !post[0].contains("window"),
        "{post:?}"
    );
}

#[test]
fn an_artifact_from_the_environment_is_read_and_checked_at_start_up() {
    let checks = r#"{"checks":[{"name":"built","kind":"artifact","fromEnv":"BUILT_SHA"}]}"#;
    let err = HookConfig::from_vars(&[(CHECKS_VAR, checks)][..]).unwrap_err();
    assert_eq!(err.variable, "BUILT_SHA");
    let err = HookConfig::from_vars(&[(CHECKS_VAR, checks), ("BUILT_SHA", "not-a-hash")][..])
        .unwrap_err();
    assert_eq!(err.variable, "BUILT_SHA");
    let ok = HookConfig::from_vars(
        &[
            (CHECKS_VAR, checks),
            (
                "BUILT_SHA",
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            ),
        ][..],
    )
    .unwrap();
    let CheckKind::Artifact(a) = &ok.checks.checks[0].kind else {
        panic!()
    };
    assert!(a.from_env_value.is_some());
    assert!(!ok.allow_skip, "the bypass is off unless turned on");
    let on = HookConfig::from_vars(
        &[
            (CHECKS_VAR, r#"{"checks":[{"name":"a","kind":"invoke"}]}"#),
            (ALLOW_SKIP_VAR, "true"),
        ][..],
    )
    .unwrap();
    assert!(on.allow_skip);
}

#[test]
fn env_errors_name_the_variable() {
    let err = HookConfig::from_vars(&[][..]).unwrap_err();
    assert_eq!(err.variable, CHECKS_VAR);
    let checks = r#"{"checks":[{"name":"a","kind":"invoke"}]}"#;
    // Issue 9 [14]: a margin that overflows in milliseconds panicked at start-up (debug) or
    // wrapped (release); now it is an error naming the variable.
    let err =
        HookConfig::from_vars(&[(CHECKS_VAR, checks), (MARGIN_VAR, "18446744073709551615s")][..])
            .unwrap_err();
    assert_eq!(err.variable, MARGIN_VAR);
    let err =
        HookConfig::from_vars(&[(CHECKS_VAR, checks), ("TARGET_FUNCTION", "f")][..]).unwrap_err();
    assert_eq!(err.variable, "TARGET_VERSION");
    let ok = HookConfig::from_vars(
        &[
            (CHECKS_VAR, checks),
            ("TARGET_FUNCTION", "f"),
            ("TARGET_VERSION", "arn:aws:lambda:us-east-1:1:function:f:7"),
        ][..],
    )
    .unwrap();
    assert_eq!(ok.env_target.unwrap().version, "7");
    let err =
        HookConfig::from_vars(&[(CHECKS_VAR, checks), (PRUNE_KEEP_VAR, "1")][..]).unwrap_err();
    assert_eq!(err.variable, PRUNE_KEEP_VAR);
}

#[test]
fn an_error_inside_a_kinds_settings_names_the_field() {
    // The kind's settings are flattened into the check: serde's path stops at the check.
    let err =
        parse_checks(r#"{"checks":[{"name":"c","kind":"compare","window":"2d"}]}"#).unwrap_err();
    assert!(
        err.starts_with(r#"checks[0] (check "c").window: expected a duration"#),
        "{err}"
    );
    let err = parse_checks(
        r#"{"checks":[{"name":"m","kind":"metrics","window":"2d","minSamples":"2d"}]}"#,
    )
    .unwrap_err();
    assert!(
        err.starts_with(r#"checks[0] (check "m"): "#),
        "two settings hold the value: {err}"
    );
}
