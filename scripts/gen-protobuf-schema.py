#!/usr/bin/env python3
"""Generates crates/cluster/src/protobuf/schema.txt: for each Kubernetes protobuf message that
a built-in kind reaches, its fields (tag, JSON name, kind, label, message type).

Tags and types come from the k8s-pb crate's generated prost code; JSON names from k8s-openapi's
generated code (`"hostIPC" => Field::Key_host_ipc`), joined on the Rust field name. Run with the
two crates' source directories (from ~/.cargo/registry/src/*/):

    scripts/gen-protobuf-schema.py K8S_PB_SRC K8S_OPENAPI_SRC/v1_33 > crates/cluster/src/protobuf/schema.txt
"""
import os
import re
import sys

pb_root, openapi_root = sys.argv[1], sys.argv[2]
GROUPS = ["core", "apps", "batch", "networking", "rbac", "policy", "autoscaling", "coordination",
          "discovery", "events", "scheduling", "storage", "node", "authentication", "authorization",
          "admissionregistration", "certificates"]

attr_re = re.compile(r'#\[prost\((.*)\)\]')
field_re = re.compile(r'pub (?:r#)?(\w+):\s*(.*)')


def resolve(module, rust_type):
    """Full message path of a Rust type path relative to `module` (a list of module names)."""
    inner = rust_type
    for wrapper in ["::core::option::Option<", "::prost::alloc::vec::Vec<", "Option<", "Vec<"]:
        if inner.startswith(wrapper):
            inner = inner[len(wrapper):-1]
    if "BTreeMap<" in inner or "HashMap<" in inner:
        inner = inner.split(",", 1)[1].strip()[:-1].strip()
    parts = inner.split("::")
    path = list(module)
    while parts and parts[0] == "super":
        path.pop()
        parts.pop(0)
    return ".".join(path + parts)


messages = {}
for dirpath, _, files in os.walk(pb_root):
    if "mod.rs" not in files:
        continue
    module = os.path.relpath(dirpath, pb_root).split(os.sep)
    if module == ["."]:
        continue
    text = open(os.path.join(dirpath, "mod.rs")).read()
    lines = text.split("\n")
    i = 0
    current = None
    pending = None
    while i < len(lines):
        line = lines[i].strip()
        m = re.match(r'pub struct (\w+) \{', line)
        if m:
            current = ".".join(module + [m.group(1)])
            messages[current] = []
        elif line == "}":
            current = None
        elif current and (a := attr_re.match(line)):
            pending = a.group(1)
        elif current and pending and line.startswith("pub "):
            decl = line
            while not decl.endswith(",") or decl.count("<") > decl.count(">"):
                i += 1
                decl += lines[i].strip()
            f = field_re.match(decl[:-1])
            name, rust_type = f.group(1), f.group(2).replace(" ", "").replace(",>", ">")
            tag = re.search(r'tag\s*=\s*"(\d+)"', pending).group(1)
            spec = pending.split(",")[0].strip()
            label = "repeated" if "repeated" in pending else "optional"
            if spec.startswith("btree_map") or spec.startswith("map") or spec.startswith("hash_map"):
                kinds = re.search(r'"([^"]+)"', pending).group(1).split(",")
                key, value = kinds[0].strip(), kinds[1].strip()
                target = resolve(module, rust_type) if value.startswith("message") else "-"
                messages[current].append((int(tag), name, "map:" + key + ":" + value.split("(")[0], "map", target))
            else:
                kind = spec.split("=")[0].strip()
                target = resolve(module, rust_type) if kind in ("message", "enumeration") else "-"
                messages[current].append((int(tag), name, kind, label, target))
            pending = None
        i += 1

# JSON names from k8s-openapi: per struct file, "json" => Field::Key_rust.
json_names = {}
for dirpath, _, files in os.walk(openapi_root):
    module = os.path.relpath(dirpath, openapi_root).split(os.sep)
    for file in files:
        if not file.endswith(".rs") or file == "mod.rs":
            continue
        text = open(os.path.join(dirpath, file)).read()
        m = re.search(r'pub struct (\w+)', text)
        if not m:
            continue
        key = ".".join(module + [m.group(1)]).lower()
        json_names[key] = dict((rust, js) for js, rust in re.findall(r'"([^"]+)" => Field::Key_(\w+)', text))

def served(name):
    """A kind of a version sluice serves (no betas)."""
    parts = name.split(".")
    return parts[1] in GROUPS and re.fullmatch(r"v\d+", parts[2]) is not None


# Fallback for messages k8s-openapi inlines: the JSON name that Rust name has elsewhere.
everywhere = {}
for names in json_names.values():
    for rust, js in names.items():
        everywhere.setdefault(rust, js)

roots = [name for name, fields in messages.items()
         if name.startswith("api.") and served(name)
         and any(f[1] == "metadata" for f in fields) and not name.endswith("List")]
reachable, todo = set(), list(roots)
while todo:
    name = todo.pop()
    if name in reachable or name not in messages:
        continue
    reachable.add(name)
    for field in messages[name]:
        if field[4] != "-":
            todo.append(field[4])

missing = 0
for name in sorted(reachable):
    known = json_names.get(name.lower())
    names = known or {}
    print("M " + name)
    for tag, rust, kind, label, target in sorted(messages[name]):
        js = names.get(rust) or names.get(rust + "_")
        if js is None:
            # The crates split some names differently (pod_cid_rs / pod_cidrs): compare the
            # JSON names with case and underscores ignored.
            flat = rust.replace("_", "").lower()
            js = next((j for j in names.values() if j.lower() == flat), None)
        if js is None and known is not None and kind == "message":
            # Go embeds it inline when its fields are the parent's in JSON (Volume's
            # VolumeSource); otherwise it is a field newer than k8s-openapi's version.
            inner = [f[1] for f in messages.get(target, [])]
            if inner and sum(1 for f in inner if f in names or f + "_" in names) * 2 >= len(inner):
                label, js = "inline", rust
        if js is None:
            js = everywhere.get(rust)
        if js is None:
            # A few helper messages (Time, IntOrString, …) have no JSON object form.
            js = re.sub(r'_(\w)', lambda m: m.group(1).upper(), rust)
            missing += 1
            print("guessed", name, rust, js, file=sys.stderr)
        print(f"F {tag} {js} {kind} {label} {target}")
print(f"{len(reachable)} messages, {missing} JSON names guessed", file=sys.stderr)
