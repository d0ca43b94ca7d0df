//! Patch merge keys of built-in kinds' lists (the `patchMergeKey` /
//! `x-kubernetes-list-map-keys` of k8s.io/api), by field name and parent path.
