//! Create, read, update, patch and delete on built-in kinds and every sluice kind, over HTTPS and
//! in-process; generation, the status split, `/scale`, optimistic concurrency and selectors.

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod, Service},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout};

use crate::harness::{both, from, namespace};

#[tokio::test]
async fn configmap_crud_over_both_transports() {
    for (via, client) in both().await {
        let ns = namespace(&client, "crud").await;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let created = api
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": "cm"}, "data": {"a": "1"}})),
            )
            .await
            .unwrap();
        let meta = &created.metadata;
        assert!(
            meta.uid.is_some() && meta.creation_timestamp.is_some(),
            "{via}"
        );
        let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
        assert!(rv > 0, "{via}: resourceVersion is a decimal string");
        assert_eq!(
            api.get("cm").await.unwrap().data.unwrap()["a"],
            "1",
            "{via}"
        );

        let mut changed = created.clone();
        changed.data = Some([("a".to_string(), "2".to_string())].into());
        let replaced = api
            .replace("cm", &PostParams::default(), &changed)
            .await
            .unwrap();
        let rv2: u64 = replaced
            .metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv, "{via}: every write bumps the resourceVersion");

        // A replace based on the old version conflicts.
        let err = api
            .replace("cm", &PostParams::default(), &changed)
            .await
            .unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
            "{via}: {err}"
        );

        let patched = api
            .patch(
                "cm",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"b": "3"}})),
            )
            .await
            .unwrap();
        assert_eq!(patched.data.as_ref().unwrap().len(), 2, "{via}");
        let json_patch: json_patch::Patch =
            from(json!([{"op": "replace", "path": "/data/b", "value": "4"}]));
        let patched = api
            .patch(
                "cm",
                &PatchParams::default(),
                &Patch::<()>::Json(json_patch),
            )
            .await
            .unwrap();
        assert_eq!(patched.data.unwrap()["b"], "4", "{via}");

        // A failed JSON patch `test` is 422, and changes nothing.
        let failing: json_patch::Patch =
            from(json!([{"op": "test", "path": "/data/b", "value": "nope"}]));
        let err = api
            .patch("cm", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await
            .unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 422),
            "{via}: {err}"
        );

        // A no-op write keeps the resourceVersion.
        let current = api.get("cm").await.unwrap();
        let again = api
            .replace("cm", &PostParams::default(), &current)
            .await
            .unwrap();
        assert_eq!(
            again.metadata.resource_version, current.metadata.resource_version,
            "{via}"
        );

        api.delete("cm", &DeleteParams::default()).await.unwrap();
        let err = api.get("cm").await.unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
            "{via}"
        );
    }
}

#[tokio::test]
async fn generate_name_and_server_assigned_fields() {
    let client = crate::harness::local();
    let ns = namespace(&client, "assign").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = pods
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})),
        )
        .await
        .unwrap();
    let name = pod.metadata.name.unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("sluice-local"));
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));

    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc = services
        .create(&PostParams::default(), &from(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})))
        .await
        .unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    assert!(ip.starts_with("127.2."), "{ip}");
    let other = services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .unwrap();
    assert_ne!(
        other.spec.unwrap().cluster_ip.unwrap(),
        ip,
        "cluster IPs are unique"
    );
}

#[tokio::test]
async fn generation_and_status_split() {
    for (via, client) in both().await {
        let ns = namespace(&client, "gen").await;
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let deployment = json!({
            "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}},
            "status": {"replicas": 99}
        });
        let created = api
            .create(&PostParams::default(), &from(deployment))
            .await
            .unwrap();
        assert_eq!(created.metadata.generation, Some(1), "{via}");
        assert!(
            created.status.is_none_or(|s| s.replicas.is_none()),
            "{via}: status is dropped on create"
        );

        // Metadata changes keep the generation; spec changes bump it.
        let labelled = api
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"c": "d"}}})),
            )
            .await
            .unwrap();
        assert_eq!(labelled.metadata.generation, Some(1), "{via}");
        let scaled = api
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"replicas": 7}})),
            )
            .await
            .unwrap();
        assert_eq!(scaled.metadata.generation, Some(2), "{via}");
        assert!(
            scaled.status.is_none_or(|s| s.replicas.is_none()),
            "{via}: the main endpoint ignores status"
        );

        // /status changes status only.
        let status = api
            .patch_status(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"replicas": 3}})),
            )
            .await
            .unwrap();
        assert_eq!(status.status.unwrap().replicas, Some(3), "{via}");
        assert_eq!(
            status.spec.unwrap().replicas,
            Some(3),
            "{via}: /status ignores spec"
        );
        assert_eq!(status.metadata.generation, Some(2), "{via}");

        // /scale answers autoscaling/v1 Scale and writes spec.replicas.
        let scale = api.get_scale("web").await.unwrap();
        assert_eq!(scale.spec.unwrap().replicas, Some(3));
        assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
        api.patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
        assert_eq!(
            api.get("web").await.unwrap().spec.unwrap().replicas,
            Some(5),
            "{via}"
        );
    }
}

fn rollout(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]}},
            "strategy": {"blueGreen": {"activeService": format!("{name}-active"), "autoPromotionEnabled": false}}
        }
    })
}

#[tokio::test]
async fn every_sluice_kind_round_trips_through_the_api() {
    for (via, client) in both().await {
        let ns = namespace(&client, "kinds").await;
        let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
        let created = rollouts
            .create(&PostParams::default(), &from(rollout("demo")))
            .await
            .unwrap();
        assert_eq!(created.metadata.generation, Some(1), "{via}");
        let status = rollouts
            .patch_status("demo", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Paused", "HPAReplicas": 2, "selector": "app=demo"}})))
            .await
            .unwrap();
        assert_eq!(status.status.unwrap().hpa_replicas, Some(2), "{via}");
        let scale = rollouts.get_scale("demo").await.unwrap();
        assert_eq!(
            scale.status.unwrap().selector.as_deref(),
            Some("app=demo"),
            "{via}: Rollout's labelSelectorPath"
        );
        rollouts
            .patch_scale(
                "demo",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 4}})),
            )
            .await
            .unwrap();
        let got = rollouts.get("demo").await.unwrap();
        assert_eq!(got.spec.replicas, Some(4), "{via}");
        assert_eq!(got.metadata.generation, Some(2), "{via}");

        let templates: Api<AnalysisTemplate> = Api::namespaced(client.clone(), &ns);
        let template = json!({"metadata": {"name": "rate"}, "spec": {"metrics": [{"name": "up", "provider": {"prometheus": {"query": "up"}}}]}});
        templates
            .create(&PostParams::default(), &from(template.clone()))
            .await
            .unwrap();
        assert_eq!(
            templates
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1,
            "{via}"
        );

        let cluster_templates: Api<ClusterAnalysisTemplate> = Api::all(client.clone());
        let name = format!("{ns}-rate");
        let mut cat = template.clone();
        cat["metadata"]["name"] = json!(name);
        cluster_templates
            .create(&PostParams::default(), &from(cat))
            .await
            .unwrap();
        assert!(
            cluster_templates
                .get(&name)
                .await
                .unwrap()
                .metadata
                .namespace
                .is_none(),
            "{via}"
        );
        cluster_templates
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();

        // AnalysisRun status is written through the main resource (no status subresource).
        let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), &ns);
        let run = json!({"metadata": {"name": "run"}, "spec": {"metrics": [{"name": "up", "provider": {"prometheus": {"query": "up"}}}]}, "status": {"phase": "Running"}});
        let created = runs
            .create(&PostParams::default(), &from(run))
            .await
            .unwrap();
        assert_eq!(
            created.status.unwrap().phase,
            sluice_api::AnalysisPhase::Running,
            "{via}"
        );

        let experiments: Api<Experiment> = Api::namespaced(client.clone(), &ns);
        let experiment = json!({"metadata": {"name": "exp"}, "spec": {"templates": [{
            "name": "baseline", "selector": {"matchLabels": {"app": "b"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]}}
        }]}});
        experiments
            .create(&PostParams::default(), &from(experiment))
            .await
            .unwrap();
        let deleted = experiments
            .delete("exp", &DeleteParams::default())
            .await
            .unwrap();
        assert!(
            deleted.is_left(),
            "{via}: custom resources answer a delete with the object"
        );
    }
}

#[tokio::test]
async fn label_and_field_selectors() {
    let client: Client = crate::harness::tcp().await;
    let ns = namespace(&client, "sel").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for (name, labels) in [
        ("a", json!({"tier": "web", "env": "prod"})),
        ("b", json!({"tier": "api", "env": "prod"})),
        ("c", json!({"tier": "db"})),
    ] {
        api.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": name, "labels": labels}})),
        )
        .await
        .unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect()
    };
    let cases = [
        ("tier=web", vec!["a"]),
        ("tier!=web", vec!["b", "c"]),
        ("tier in (web,api)", vec!["a", "b"]),
        ("tier notin (web,api)", vec!["c"]),
        ("env", vec!["a", "b"]),
        ("!env", vec!["c"]),
        ("env=prod,tier=api", vec!["b"]),
    ];
    for (selector, expected) in cases {
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(list), expected, "{selector}");
    }
    let list = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(list), vec!["b"]);
    let list = api
        .list(&ListParams::default().fields("metadata.name!=b"))
        .await
        .unwrap();
    assert_eq!(names(list), vec!["a", "c"]);

    // Pages of one with continue tokens visit everything once.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(1);
    loop {
        let page = api.list(&params).await.unwrap();
        let token = page.metadata.continue_.clone();
        seen.extend(names(page));
        match token {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen, vec!["a", "b", "c"]);
}

/// A CRD applied at runtime registers its kind; with two served versions (`conversion: None`)
/// an object written through one reads back through the other with its `apiVersion` changed.
#[tokio::test]
async fn runtime_crds_serve_every_version() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::{api::ApiResource, core::DynamicObject, core::GroupVersionKind};
    let client = crate::harness::local();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}});
    let crd = json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v2", "served": true, "storage": false, "schema": schema}]}
    });
    let created = crds
        .create(&PostParams::default(), &from(crd))
        .await
        .unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
    );
    let ns = namespace(&client, "gadgets").await;
    let v2 = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v2", "Gadget"));
    let v1 = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gadget"));
    let through_v2: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &v2);
    let gadget: DynamicObject = from(
        json!({"apiVersion": "example.com/v2", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": 2}}),
    );
    through_v2
        .create(&PostParams::default(), &gadget)
        .await
        .unwrap();
    let through_v1: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &v1);
    let read = through_v1.get("g").await.unwrap();
    assert_eq!(read.types.unwrap().api_version, "example.com/v1");
    assert_eq!(read.data["spec"]["size"], 2);
    assert_eq!(
        through_v2
            .get("g")
            .await
            .unwrap()
            .types
            .unwrap()
            .api_version,
        "example.com/v2"
    );
    // Deleting the CRD unregisters its kind.
    crds.delete("gadgets.example.com", &Default::default())
        .await
        .unwrap();
    let err = through_v1.get("g").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );
}

/// Metadata-only reads (`Accept: …;as=PartialObjectMetadata`), as kube-rs' metadata watches
/// and client-go's metadata informers ask: get, list and watch answer metadata alone.
#[tokio::test]
async fn metadata_only_reads_answer_metadata_alone() {
    for (via, client) in both().await {
        let ns = namespace(&client, "partial").await;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        api.create(
            &PostParams::default(),
            &from(
                json!({"metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"secret": "x"}}),
            ),
        )
        .await
        .unwrap();
        let raw = |path: String, accept: &'static str| {
            let client = client.clone();
            async move {
                let request = http::Request::get(path)
                    .header(http::header::ACCEPT, accept)
                    .body(Vec::new())
                    .unwrap();
                let text = client.request_text(request).await.unwrap();
                serde_json::from_str::<serde_json::Value>(&text).unwrap()
            }
        };
        let one = raw(
            format!("/api/v1/namespaces/{ns}/configmaps/cm"),
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .await;
        assert_eq!(one["kind"], "PartialObjectMetadata", "{via}");
        assert_eq!(one["metadata"]["labels"]["a"], "b", "{via}");
        assert!(one.get("data").is_none(), "{via}: {one}");
        let list = raw(
            format!("/api/v1/namespaces/{ns}/configmaps"),
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        .await;
        assert_eq!(list["kind"], "PartialObjectMetadataList", "{via}");
        assert_eq!(list["items"][0]["metadata"]["name"], "cm", "{via}");
        assert!(list["items"][0].get("data").is_none(), "{via}");
        // kube-rs' typed metadata calls read the same.
        let metas = api.list_metadata(&ListParams::default()).await.unwrap();
        assert_eq!(metas.items.len(), 1, "{via}");
        let partial: Api<kube::core::PartialObjectMeta<ConfigMap>> =
            Api::namespaced(client.clone(), &ns);
        let stream = kube::runtime::watcher(partial, Default::default());
        use futures::StreamExt;
        let mut stream = std::pin::pin!(stream);
        let mut seen = false;
        while let Some(event) = stream.next().await {
            if let kube::runtime::watcher::Event::InitApply(object) = event.unwrap() {
                assert_eq!(object.metadata.name.as_deref(), Some("cm"), "{via}");
                seen = true;
            }
            if seen {
                break;
            }
        }
    }
}
