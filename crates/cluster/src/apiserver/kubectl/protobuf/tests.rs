//! The reader against bodies encoded here the way Go's generated code writes them.

use super::*;

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn bytes(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(tag) << 3 | 2);
    out.extend(varint(value.len() as u64));
    out.extend(value);
    out
}

fn number(tag: u32, value: i64) -> Vec<u8> {
    let mut out = varint(u64::from(tag) << 3);
    out.extend(varint(value as u64));
    out
}

fn message(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = message(&[bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())]);
    let mut body = b"k8s\0".to_vec();
    body.extend(message(&[
        bytes(1, &type_meta),
        bytes(2, raw),
        bytes(3, b""),
        bytes(4, b""),
    ]));
    body
}

/// Go's zero time, as Go writes an unset `creationTimestamp`.
fn zero_time() -> Vec<u8> {
    message(&[number(1, GO_ZERO_TIME), number(2, 0)])
}

#[test]
fn a_config_map_reads_as_kubectl_create_configmap_means_it() {
    let metadata = message(&[bytes(1, b"cfg"), bytes(8, &zero_time())]);
    let entry = message(&[bytes(1, b"a"), bytes(2, b"1")]);
    let binary = message(&[bytes(1, b"bin"), bytes(2, &[0xff, 0x00])]);
    let raw = message(&[bytes(1, &metadata), bytes(2, &entry), bytes(3, &binary)]);
    let object = decode(&envelope("v1", "ConfigMap", &raw)).unwrap();
    assert_eq!(
        object,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {"a": "1"}, "binaryData": {"bin": "/wA="}})
    );
}

#[test]
fn a_deployment_keeps_its_lists_zero_replicas_and_drops_go_zero_values() {
    let labels = message(&[bytes(1, b"app"), bytes(2, b"web")]);
    let port = message(&[number(3, 80), bytes(4, b"TCP"), bytes(5, b"")]);
    let limits = message(&[bytes(1, b"cpu"), bytes(2, &message(&[bytes(1, b"500m")]))]);
    let resources = message(&[bytes(1, &limits)]);
    let container = message(&[
        bytes(1, b"nginx"),
        bytes(2, b"nginx:1.25"),
        bytes(3, b"sh"),
        bytes(3, b"-c"),
        bytes(6, &port),
        bytes(8, &resources),
        number(16, 0), // stdin: false
    ]);
    let pod_spec = message(&[bytes(2, &container)]);
    let template = message(&[
        bytes(1, &message(&[bytes(11, &labels), bytes(8, &zero_time())])),
        bytes(2, &pod_spec),
    ]);
    let selector = message(&[bytes(1, &labels)]);
    let spec = message(&[
        number(1, 0),
        bytes(2, &selector),
        bytes(3, &template),
        bytes(4, b""),
    ]);
    let raw = message(&[
        bytes(1, &message(&[bytes(1, b"web")])),
        bytes(2, &spec),
        bytes(3, b""),
    ]);
    let object = decode(&envelope("apps/v1", "Deployment", &raw)).unwrap();
    assert_eq!(
        object["spec"]["replicas"], 0,
        "a pointer's zero is kept: {object}"
    );
    assert_eq!(
        object["spec"]["selector"]["matchLabels"],
        json!({"app": "web"})
    );
    let container = &object["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container,
        &json!({"name": "nginx", "image": "nginx:1.25", "command": ["sh", "-c"],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "500m"}}})
    );
    assert!(
        object["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none()
    );
    assert_eq!(object["status"], json!({}));
}

#[test]
fn int_or_string_time_and_inline_structs_take_their_json_forms() {
    let by_name = message(&[number(1, 1), bytes(3, b"http")]);
    let by_number = message(&[number(1, 0), number(2, 8080)]);
    let ports = [
        message(&[bytes(1, b"web"), number(3, 80), bytes(4, &by_name)]),
        message(&[bytes(1, b"alt"), number(3, 81), bytes(4, &by_number)]),
    ];
    let spec = message(&[bytes(1, &ports[0]), bytes(1, &ports[1])]);
    let created = message(&[number(1, 1_700_000_000)]);
    let raw = message(&[
        bytes(1, &message(&[bytes(1, b"svc"), bytes(8, &created)])),
        bytes(2, &spec),
    ]);
    let object = decode(&envelope("v1", "Service", &raw)).unwrap();
    assert_eq!(object["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(object["spec"]["ports"][1]["targetPort"], 8080);
    assert_eq!(
        object["metadata"]["creationTimestamp"],
        "2023-11-14T22:13:20Z"
    );
    // A Volume's VolumeSource is inline in JSON.
    let empty_dir = message(&[bytes(1, b"Memory")]);
    let source = message(&[bytes(2, &empty_dir)]);
    let volume = message(&[bytes(1, b"scratch"), bytes(2, &source)]);
    let pod = message(&[
        bytes(1, &message(&[bytes(1, b"p")])),
        bytes(2, &message(&[bytes(1, &volume)])),
    ]);
    let object = decode(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        object["spec"]["volumes"][0],
        json!({"name": "scratch", "emptyDir": {"medium": "Memory"}})
    );
}

#[test]
fn bodies_that_are_not_kubernetes_protobuf_are_refused() {
    assert!(matches!(decode(b"{}"), Err(ProtobufError::Envelope(_))));
    let unknown = envelope("example.com/v1", "Widget", b"");
    assert!(matches!(
        decode(&unknown),
        Err(ProtobufError::UnknownKind(_))
    ));
    let mut truncated = envelope("v1", "ConfigMap", &bytes(1, b"abc"));
    truncated.truncate(truncated.len() - 2);
    assert!(decode(&truncated).is_err());
}
