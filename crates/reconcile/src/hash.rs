//! The pod-template hash: the `rollouts-pod-template-hash` label that names a Rollout's
//! ReplicaSet for one template. FNV-1a (32 bit) over a canonical JSON encoding of the template
//! as the user wrote it (object keys sorted, so the hash is stable across restarts and sluice
//! versions), plus the collision count as Argo appends it, written in decimal and then
//! safe-encoded as Kubernetes does (`674d8cf959`). Argo hashes Go's `json.Marshal` of the typed
//! template instead, so its hashes differ; existing Argo ReplicaSets are adopted by template
//! equality (`sluice_rollouts::replicasets`), not by hash. The embedded cluster's Deployment
//! controller names its ReplicaSets with the same primitives ([`fnv1a`], [`safe_encode`]).

use serde_json::Value;

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels, no easily confused characters.
const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a's 32-bit offset basis: the starting value of a hash.
pub const OFFSET: u32 = 0x811c_9dc5;

/// FNV-1a (32 bit) of `bytes`, continuing from `hash` ([`OFFSET`] to start).
pub fn fnv1a(bytes: &[u8], mut hash: u32) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The JSON text of `value` with every object's keys in order and without `null` members (an
/// unset field, as Argo's typed template reads it).
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Kubernetes' safe encoding of a string (`rand.SafeEncodeString`).
pub fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The hash of any JSON value, as the pod-template hash without collisions (Argo's
/// `ComputeStepHash` of the canary steps).
pub fn json_hash(value: &Value) -> String {
    pod_template_hash(value, None)
}

/// The hash of a pod template (as JSON) with the Rollout's `status.collisionCount`.
pub fn pod_template_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    let mut hash = fnv1a(text.as_bytes(), OFFSET);
    if let Some(count) = collision_count {
        // Argo appends an 8-byte buffer with the count little-endian in its first four bytes.
        let mut buffer = [0u8; 8];
        buffer[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a(&buffer, hash);
    }
    safe_encode(&hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b"", 0x811c_9dc5), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a", 0x811c_9dc5), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar", 0x811c_9dc5), 0xbf9c_f968);
    }

    #[test]
    fn digits_encode_as_kubernetes_does() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn the_hash_ignores_key_order_and_changes_with_the_template_and_collisions() {
        let a = json!({"metadata": {"labels": {"app": "demo", "tier": "web"}},
            "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue"}]}});
        let reordered = json!({"spec": {"containers": [{"image": "argoproj/rollouts-demo:blue", "name": "demo"}]},
            "metadata": {"labels": {"tier": "web", "app": "demo"}}});
        let yellow = json!({"metadata": {"labels": {"app": "demo", "tier": "web"}},
            "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:yellow"}]}});
        let with_null = json!({"metadata": {"labels": {"app": "demo", "tier": "web"}, "creationTimestamp": null},
            "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue"}]}});
        let hash = pod_template_hash(&a, None);
        assert_eq!(hash, pod_template_hash(&reordered, None));
        assert_eq!(hash, pod_template_hash(&with_null, None), "null is unset");
        assert_ne!(hash, pod_template_hash(&yellow, None));
        assert_ne!(hash, pod_template_hash(&a, Some(1)));
        assert_ne!(
            pod_template_hash(&a, Some(1)),
            pod_template_hash(&a, Some(2))
        );
        assert!(
            hash.len() <= 10 && hash.bytes().all(|b| ALPHABET.contains(&b)),
            "{hash}"
        );
        // Stable across versions: a change here renames every ReplicaSet (the value is FNV-1a of
        // the sorted JSON, computed independently).
        let pinned = json!({"metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{"name": "demo", "image": "argoproj/rollouts-demo:blue"}]}});
        assert_eq!(pod_template_hash(&pinned, None), "fcc76f4dd");
    }
}
