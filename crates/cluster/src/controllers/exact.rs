//! A workload whose pod template is kept exactly as written: the ReplicaSet and Job
//! controllers read their objects through it, so a pod made from the template carries every
//! field the user wrote — also fields newer than the Kubernetes version sluice compiles
//! against ([`sluice_api::Preserved`]). `K` is the k8s-openapi kind it stands for (its group,
//! version, kind and plural), `S` the spec fields the controller reads, `St` the status.

use std::{borrow::Cow, marker::PhantomData};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};

/// An object of kind `K` with spec `S` and status `St`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Exact<K, S, St> {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: Option<S>,
    /// Status.
    pub status: Option<St>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

impl<K, S, St> Resource for Exact<K, S, St>
where
    K: Resource<DynamicType = ()>,
{
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
