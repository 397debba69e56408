use super::*;

fn create_body(extra: &str) -> String {
    format!(
        r#"{{"action":"CreateSubmissionRequest","clientSparkVersion":"3.5.3",
            "appResource":"file:/opt/app/run.sh","appArgs":["a","b c"],
            "sparkProperties":{{"spark.app.name":"x","spark.driver.memory":"256m",
            "spark.driver.cores":"2","spark.driver.supervise":"true"}},
            "environmentVariables":{{"SPARK_ENV_LOADED":"1"}}{extra}}}"#
    )
}

#[test]
fn paths_route_as_sparks_servlets_map_them() {
    assert_eq!(route("POST", "/v1/submissions/create"), Request::Create);
    assert_eq!(route("POST", "/v1/submissions/create/"), Request::Create);
    assert_eq!(
        route("GET", "/v1/submissions/status/driver-1-0000"),
        Request::Status("driver-1-0000".into())
    );
    assert_eq!(
        route("POST", "/v1/submissions/kill//driver-1/more"),
        Request::Kill("driver-1".into())
    );
    let refused = |m: &str, p: &str| match route(m, p) {
        Request::Refused(r) => (
            r.status,
            r.body["message"].as_str().unwrap_or("").to_string(),
        ),
        other => panic!("{other:?}"),
    };
    let (code, msg) = refused("POST", "/v1/submissions/kill/");
    assert_eq!(
        (code, msg.as_str()),
        (400, "Submission ID is missing in kill request.")
    );
    let (code, msg) = refused("GET", "/v1/submissions/status");
    assert_eq!(
        (code, msg.as_str()),
        (400, "Submission ID is missing in status request.")
    );
    assert_eq!(refused("GET", "/v1/submissions/create").0, 405);
    assert_eq!(refused("POST", "/v1/submissions/status/x").0, 405);
    let (code, msg) = refused("GET", "/");
    assert_eq!(code, 400);
    assert!(
        msg.starts_with("Missing protocol version. Please submit"),
        "{msg}"
    );
    assert!(refused("GET", "/v1")
        .1
        .starts_with("Missing the /submissions prefix."));
    assert!(refused("GET", "/v1/submissions/go")
        .1
        .starts_with("Missing an action"));
    match route("POST", "/v2/submissions/create") {
        Request::Refused(r) => {
            assert_eq!(r.status, UNKNOWN_PROTOCOL_VERSION);
            assert_eq!(r.body["highestProtocolVersion"], "v1");
            assert_eq!(r.body["action"], "ErrorResponse");
            assert!(r.body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Unknown protocol version 'v2'.")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_create_request_maps_to_a_supervised_process_driver() {
    let req = decode_create(create_body(r#","extra":1"#).as_bytes()).unwrap();
    assert_eq!(req.unknown_fields, vec!["extra".to_string()]);
    let d = driver_desc(&req).unwrap();
    assert_eq!(
        d.command,
        vec!["env", "SPARK_ENV_LOADED=1", "/opt/app/run.sh", "a", "b c"]
    );
    assert_eq!((d.cores, d.memory_mb, d.supervise), (2, 256, true));
}

#[test]
fn a_jar_runs_its_main_class_with_the_driver_memory() {
    let body = r#"{"action":"CreateSubmissionRequest","clientSparkVersion":"4.0.5",
        "appResource":"/jars/app.jar","mainClass":"org.Main","appArgs":[],
        "sparkProperties":{"spark.app.name":"x"}}"#;
    let d = driver_desc(&decode_create(body.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        d.command,
        vec!["java", "-Xmx1024m", "-cp", "/jars/app.jar", "org.Main"]
    );
    assert_eq!((d.cores, d.supervise), (1, false));
    let no_main = body.replace(r#""mainClass":"org.Main","#, "");
    let e = driver_desc(&decode_create(no_main.as_bytes()).unwrap()).unwrap_err();
    assert!(e.body["message"]
        .as_str()
        .unwrap_or("")
        .contains("Main class is missing."));
}

#[test]
fn bad_bodies_get_a_clear_error_response_never_a_panic() {
    let message = |body: &[u8]| {
        let e = decode_create(body).unwrap_err();
        assert_eq!(e.body["action"], "ErrorResponse");
        (
            e.status,
            e.body["message"].as_str().unwrap_or("").to_string(),
        )
    };
    assert!(message(b"not json")
        .1
        .starts_with("Malformed request: invalid JSON"));
    assert!(message(b"[]")
        .1
        .starts_with("Malformed request: invalid JSON"));
    assert!(message(b"{}").1.contains("the action field is missing"));
    assert!(message(br#"{"action":"Nope"}"#)
        .1
        .contains("unknown action 'Nope'"));
    assert_eq!(
        message(br#"{"action":"KillSubmissionResponse"}"#).1,
        "Received message of unexpected type KillSubmissionResponse."
    );
    let without = |field: &str| {
        let mut v: Value = serde_json::from_str(&create_body("")).unwrap();
        if let Some(o) = v.as_object_mut() {
            o.remove(field);
        }
        message(v.to_string().as_bytes()).1
    };
    assert!(without("clientSparkVersion").contains("Field 'clientSparkVersion' is missing"));
    assert!(without("appResource").contains("Field 'appResource' is missing"));
    assert!(without("sparkProperties").contains("No Spark properties set!"));
    let typed = create_body("").replace(r#""appArgs":["a","b c"]"#, r#""appArgs":[1]"#);
    assert_eq!(message(typed.as_bytes()).0, 400);
    let bad_memory = create_body("").replace("256m", "lots");
    assert!(message(bad_memory.as_bytes())
        .1
        .contains("Property 'spark.driver.memory' expected memory value: actual was 'lots'."));
    let deep = "[".repeat(100_000);
    assert_eq!(message(deep.as_bytes()).0, 400);
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(message(&huge).0, 413);
    let remote = create_body("").replace("file:/opt/app/run.sh", "hdfs://nn/app.sh");
    let req = decode_create(remote.as_bytes()).unwrap();
    assert!(driver_desc(&req).is_err());
    let overflow = create_body("").replace("256m", "18446744073709551615t");
    assert_eq!(message(overflow.as_bytes()).0, 400);
}

#[test]
fn responses_carry_sparks_fields_in_jacksons_layout() {
    let answer = StatusAnswer {
        found: true,
        state: Some("RUNNING".into()),
        worker_id: Some("worker-1".into()),
        worker_host_port: Some("127.0.0.1:8081".into()),
        message: None,
    };
    let text = status_response("driver-1", &answer).text();
    assert_eq!(
        text,
        format!(
            "{{\n  \"action\" : \"SubmissionStatusResponse\",\n  \"driverState\" : \"RUNNING\",\n  \
             \"serverSparkVersion\" : \"{SERVER_VERSION}\",\n  \"submissionId\" : \"driver-1\",\n  \
             \"success\" : true,\n  \"workerHostPort\" : \"127.0.0.1:8081\",\n  \
             \"workerId\" : \"worker-1\"\n}}"
        )
    );
    let kill = kill_response(
        "d",
        &KillAnswer {
            success: false,
            message: format!("{NOT_ALIVE_PREFIX}: STANDBY."),
        },
    );
    assert_eq!(kill.body["success"], false);
    let created = create_response(
        &CreateAnswer {
            success: true,
            driver_id: Some("driver-1".into()),
            message: "ok".into(),
        },
        &["x".to_string()],
    );
    assert!(created.text().contains("\"unknownFields\" : [ \"x\" ]"));
}
