use super::*;
use serde_json::{Value, json};

/// Decodes `text` as a request, checks it equals `expected`, and that encoding it again gives
/// the same JSON value as the text (field order aside).
fn check_request(text: &str, expected: Request) {
    let decoded = ClientMessage::decode(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    assert_eq!(decoded.request, expected, "decoding {text}");
    let reencoded: Value = serde_json::from_str(&decoded.encode()).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    assert_eq!(reencoded, original, "re-encoding {text}");
}

/// Encodes `message` and checks it is exactly the JSON value of `text`, and decodes back.
fn check_event(text: &str, message: ServerMessage) {
    let encoded: Value = serde_json::from_str(&message.encode()).unwrap();
    let expected: Value = serde_json::from_str(text).unwrap();
    assert_eq!(encoded, expected, "encoding {message:?}");
    let decoded: ServerMessage = serde_json::from_str(text).unwrap();
    assert_eq!(decoded, message, "decoding {text}");
}

// The request examples of seeds/000, verbatim.
#[test]
fn seed_000_requests() {
    check_request(
        r#"{ "type": "create_terminal", "payload": { "terminalId": "main-terminal" } }"#,
        Request::CreateTerminal(CreateTerminal {
            terminal_id: Some("main-terminal".into()),
            ..Default::default()
        }),
    );
    check_request(
        r#"{ "type": "terminal_input", "payload": { "terminalId": "main-terminal", "input": "ls -la\n" } }"#,
        Request::TerminalInput(TerminalInput {
            terminal_id: "main-terminal".into(),
            input: "ls -la\n".into(),
        }),
    );
    check_request(
        r#"{
            "type": "run_command",
            "payload": {
                "command": "npm",
                "args": ["install"],
                "cwd": "/tmp",
                "env": { "NODE_ENV": "development" }
            }
        }"#,
        Request::RunCommand(RunCommand {
            command: "npm".into(),
            args: Some(vec!["install".into()]),
            cwd: Some("/tmp".into()),
            env: Some([("NODE_ENV".to_string(), "development".to_string())].into()),
            process_id: None,
        }),
    );
    check_request(
        r#"{ "type": "stop_process", "payload": { "processId": "proc_123" } }"#,
        Request::StopProcess(StopProcess {
            process_id: "proc_123".into(),
            signal: None,
        }),
    );
    check_request(
        r#"{ "type": "read_file", "payload": { "path": "/src/App.jsx" } }"#,
        Request::ReadFile(ReadFile {
            path: "/src/App.jsx".into(),
            encoding: Encoding::Utf8,
        }),
    );
    check_request(
        r#"{
            "type": "write_file",
            "payload": { "path": "/src/App.jsx", "content": "console.log('Hello World');" }
        }"#,
        Request::WriteFile(WriteFile {
            path: "/src/App.jsx".into(),
            content: "console.log('Hello World');".into(),
            encoding: Encoding::Utf8,
            base_version: None,
        }),
    );
}

// The reply examples of seeds/000, verbatim.
#[test]
fn seed_000_replies() {
    check_event(
        r#"{ "type": "terminal_output", "terminalId": "main-terminal", "data": "$ ls -la\n..." }"#,
        ServerMessage::event(Event::TerminalOutput(TerminalOutput {
            terminal_id: "main-terminal".into(),
            data: "$ ls -la\n...".into(),
            offset: None,
        })),
    );
    // Seed 000 shows process_started without a pid; cove adds one when it knows it.
    check_event(
        r#"{ "type": "process_started", "processId": "proc_123", "command": "npm", "args": ["install"] }"#,
        ServerMessage::event(Event::ProcessStarted(ProcessStarted {
            process_id: "proc_123".into(),
            command: "npm".into(),
            args: vec!["install".into()],
            pid: None,
        })),
    );
    // Seed 000's file_content has path and content; cove's also carries encoding and version,
    // which a seed client ignores. Decoding the seed's own shape must work too.
    let seed: Value = json!({ "type": "file_content", "path": "/src/App.jsx", "content": "console.log('Hello World');" });
    let ours = ServerMessage::event(Event::FileContent(FileContent {
        path: "/src/App.jsx".into(),
        content: "console.log('Hello World');".into(),
        encoding: Encoding::Utf8,
        version: "v1".into(),
    }));
    let encoded: Value = serde_json::from_str(&ours.encode()).unwrap();
    for (key, value) in seed.as_object().unwrap() {
        assert_eq!(&encoded[key], value, "field {key}");
    }
}

#[test]
fn requests_without_payload_decode() {
    for kind in [
        "ping",
        "list_terminals",
        "list_processes",
        "list_ports",
        "stats",
        "watch",
    ] {
        let text = format!(r#"{{"type":"{kind}"}}"#);
        ClientMessage::decode(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    }
    let m = ClientMessage::decode(r#"{"type":"ping","requestId":"r1"}"#).unwrap();
    assert_eq!(m.request, Request::Ping(Empty {}));
    assert_eq!(m.request_id.as_deref(), Some("r1"));
}

/// Every request type, decoded from a payload with every field any request needs.
fn every_request() -> Vec<(&'static str, Request)> {
    let payload = json!({"terminalId":"t","input":"x","cols":1,"rows":1,"command":"c",
        "processId":"p","path":"a","content":"","from":"a","to":"b"});
    REQUEST_TYPES
        .iter()
        .map(|kind| {
            let text = json!({"type": kind, "payload": payload}).to_string();
            let decoded = ClientMessage::decode(&text).unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            (*kind, decoded.request)
        })
        .collect()
}

#[test]
fn every_request_type_is_known_to_the_enum() {
    for (kind, request) in every_request() {
        assert_eq!(request.kind(), kind, "kind() names the wire type");
    }
}

/// What a socket in view mode may ask (PROTOCOL.md section 8), decided per request type. A
/// new type fails here until it is put in one column or the other.
#[test]
fn view_mode_refuses_exactly_the_requests_that_change_the_workspace() {
    let changes = [
        "create_terminal",
        "terminal_input",
        "resize_terminal",
        "close_terminal",
        "run_command",
        "stop_process",
        "write_file",
        "make_dir",
        "delete_path",
        "rename_path",
    ];
    let reads = [
        "attach_terminal",
        "list_terminals",
        "list_processes",
        "subscribe_process",
        "read_file",
        "list_dir",
        "watch",
        "unwatch",
        "list_ports",
        "stats",
        "ping",
    ];
    let mut classified: Vec<&str> = changes.iter().chain(&reads).copied().collect();
    classified.sort_unstable();
    let mut known = REQUEST_TYPES.to_vec();
    known.sort_unstable();
    assert_eq!(classified, known, "every request type is classified, once");
    for (kind, request) in every_request() {
        let expected = changes.contains(&kind);
        assert_eq!(request.changes_workspace(), expected, "{kind}");
        assert!(AttachMode::Edit.allows(&request), "{kind}");
        assert_eq!(AttachMode::View.allows(&request), !expected, "{kind}");
    }
}

#[test]
fn attach_modes_in_queries() {
    assert_eq!(AttachMode::default(), AttachMode::Edit);
    for mode in [AttachMode::Edit, AttachMode::View] {
        let name = serde_json::to_value(mode).unwrap();
        assert_eq!(name, json!(mode.as_str()));
        assert_eq!(serde_json::from_value::<AttachMode>(name).unwrap(), mode);
    }
    let err = serde_json::from_str::<AttachMode>(r#""admin""#).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"mode must be edit or view, not "admin""#),
        "{err}"
    );
    // Edit is the default and left out; view is always said.
    let query = rest::TerminalQuery::default();
    assert_eq!(serde_json::to_value(&query).unwrap(), json!({}));
    let query = rest::TerminalQuery {
        mode: AttachMode::View,
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&query).unwrap(),
        json!({"mode": "view"})
    );
    let control: rest::ControlQuery = serde_json::from_str("{}").unwrap();
    assert_eq!(control.mode, AttachMode::Edit);
}

#[test]
fn replay_modes_in_queries_and_requests() {
    assert_eq!(Replay::default(), Replay::Screen);
    for replay in [Replay::Screen, Replay::Raw] {
        let query: rest::TerminalQuery =
            serde_urlencoded::from_str(&format!("replay={}", replay.as_str())).unwrap();
        assert_eq!(query.replay, Some(replay));
    }
    let err = serde_urlencoded::from_str::<rest::TerminalQuery>("replay=bytes").unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"replay must be screen or raw, not "bytes""#),
        "{err}"
    );
    let attach: AttachTerminal =
        serde_json::from_value(json!({"terminalId": "t", "replay": "raw"})).unwrap();
    assert_eq!(attach.replay, Some(Replay::Raw));
}

/// Each malformed frame fails with a message that names the problem.
#[test]
fn malformed_requests_are_explained() {
    let cases = [
        ("not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"payload":{}}"#, "no type"),
        (r#"{"type":7}"#, "type must be a string"),
        (r#"{"type":"launch_rockets"}"#, "unknown message type"),
        (
            r#"{"type":"read_file","payload":{}}"#,
            "missing field `path`",
        ),
        (
            r#"{"type":"read_file","payload":{"path":3}}"#,
            "invalid type",
        ),
        (r#"{"type":"read_file","payload":"x"}"#, "must be an object"),
        (
            r#"{"type":"resize_terminal","payload":{"terminalId":"t","cols":-1,"rows":2}}"#,
            "invalid value",
        ),
        (
            r#"{"type":"read_file","payload":{"path":"a","encoding":"latin1"}}"#,
            "unknown variant",
        ),
        (
            r#"{"type":"ping","requestId":{}}"#,
            "requestId must be a string",
        ),
    ];
    for (text, needle) in cases {
        let err = ClientMessage::decode(text).expect_err(text);
        assert!(
            err.message.contains(needle),
            "{text}: {:?} should mention {needle:?}",
            err.message
        );
    }
    let err = ClientMessage::decode(r#"{"type":"nope","requestId":"r9"}"#).unwrap_err();
    assert_eq!(err.request_id.as_deref(), Some("r9"));
}

#[test]
fn error_event_shape() {
    check_event(
        r#"{"type":"error","code":"not_found","message":"no terminal t1","requestId":"7"}"#,
        ServerMessage::reply(
            Event::Error(ErrorReply::new(ErrorCode::NotFound, "no terminal t1")),
            Some("7".into()),
        ),
    );
    check_event(
        r#"{"type":"pong"}"#,
        ServerMessage::event(Event::Pong(Empty {})),
    );
}

#[test]
fn raw_control_shapes() {
    let attached = RawControl::Attached {
        offset: 5,
        cols: 80,
        rows: 24,
        gap: false,
        snapshot: None,
    };
    assert_eq!(
        serde_json::to_value(&attached).unwrap(),
        json!({"type":"attached","offset":5,"cols":80,"rows":24})
    );
    let attached = RawControl::Attached {
        offset: 5,
        cols: 80,
        rows: 24,
        gap: false,
        snapshot: Some(900),
    };
    assert_eq!(
        serde_json::to_value(&attached).unwrap(),
        json!({"type":"attached","offset":5,"cols":80,"rows":24,"snapshot":900})
    );
    let exit = RawControl::Exit {
        exit_code: Some(0),
        signal: None,
    };
    assert_eq!(
        serde_json::to_value(&exit).unwrap(),
        json!({"type":"exit","exitCode":0,"signal":null})
    );
    let resize: RawControl =
        serde_json::from_str(r#"{"type":"resize","cols":100,"rows":30}"#).unwrap();
    assert_eq!(
        resize,
        RawControl::Resize {
            cols: 100,
            rows: 30
        }
    );
}

#[test]
fn error_codes_map_to_http() {
    for code in [
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Forbidden,
        ErrorCode::TooLarge,
        ErrorCode::LimitExceeded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::Unauthorized,
    ] {
        assert_eq!(ErrorCode::from_http_status(code.http_status()), code);
    }
}

/// The browser's types are generated from these: `web/src/api/generated.ts` must be what
/// the Rust types say today (`npm run typecheck` then fails on a field renamed here).
#[test]
fn typescript_bindings_are_current() {
    use crate::accounts::*;
    use crate::ide::*;
    use crate::rest::*;
    use ts_rs::{Config, TS};
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from crates/protocol by `COVE_UPDATE_GENERATED=1 cargo test -p cove-protocol \
         typescript`; do not edit.\n// CI fails when this file and the Rust types differ.\n\n",
    );
    macro_rules! declare {
        ($($t:ty),* $(,)?) => {
            $(
                out.push_str("export ");
                out.push_str(&<$t as TS>::decl(&cfg));
                out.push_str("\n\n");
            )*
        };
    }
    declare!(
        ErrorCode,
        LanguageServers,
        LanguageServer,
        SearchQuery,
        SearchLine,
        Settings,
        GitStatus,
        GitFile,
        GitShowQuery,
        GitShown,
        OutsideFileQuery,
        OutsideFile,
        GitRequest,
        GitReply,
        ErrorReply,
        RestError,
        WorkspaceState,
        Limits,
        CreateWorkspace,
        WorkspaceView,
        Template,
        PublishTemplate,
        ServerInfo,
        Healthz,
        Health,
        AttachMode,
        Replay,
        TerminalQuery,
        ControlQuery,
        DeleteQuery,
        Role,
        ShareAccess,
        WorkspaceAccess,
        LoginRequest,
        LoginResponse,
        Quotas,
        User,
        CreateUser,
        UpdateUser,
        UpdateWorkspace,
        ChangePassword,
        SessionView,
        CreateToken,
        TokenCreated,
        TokenView,
        Share,
        ShareRequest,
        Usage,
        Outcome,
        AuditEntry,
        AuditPage,
        AuditQuery,
        Presence,
        PresentUser,
        Request,
        Empty,
        CreateTerminal,
        TerminalRef,
        AttachTerminal,
        TerminalInput,
        ResizeTerminal,
        RunCommand,
        StopProcess,
        SignalSpec,
        ProcessRef,
        Encoding,
        ReadFile,
        WriteFile,
        PathRef,
        OptionalPath,
        DeletePath,
        RenamePath,
        ServerMessage,
        Event,
        Welcome,
        StatusState,
        Status,
        TerminalCreated,
        TerminalAttached,
        TerminalOutput,
        TerminalExit,
        TerminalInfo,
        Terminals,
        ProcessStarted,
        Stream,
        ProcessOutput,
        ProcessExit,
        ProcessInfo,
        Processes,
        FileContent,
        FileWritten,
        EntryKind,
        DirEntry,
        DirListing,
        ChangeKind,
        FileChanged,
        PortEvent,
        PortInfo,
        Ports,
        Stats,
        RawControl,
        crate::realtime::LogsSubscription,
        crate::realtime::Logs,
        crate::realtime::LogsSkipped,
        crate::realtime::StreamClosed,
        crate::realtime::StatsSubscription,
        crate::realtime::WorkspaceStats,
        crate::realtime::HostStats,
        crate::realtime::RecentError,
        crate::realtime::StatsEvent,
        crate::realtime::WatchFiles,
        crate::realtime::FileChange,
        crate::realtime::Room,
        crate::realtime::Connected,
        crate::realtime::RealtimeError,
        crate::realtime::EmitRequest,
        crate::realtime::EmitReply,
    );
    let out = out.trim_end().to_string() + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src/api/generated.ts");
    if std::env::var_os("COVE_UPDATE_GENERATED").is_some() {
        std::fs::write(&path, &out).expect("write generated.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == out,
        "web/src/api/generated.ts is not what the Rust wire types say: run \
         `COVE_UPDATE_GENERATED=1 cargo test -p cove-protocol typescript` and commit it"
    );
}
