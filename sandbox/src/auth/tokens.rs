//! ServiceAccount tokens: ES256-signed JWTs with kube-apiserver's claims
//! (issuer, audiences, expiry, the `kubernetes.io` claim naming the
//! ServiceAccount and the object the token is bound to), and their validation.

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::UserInfo;
use crate::store::{Key, Store};

/// kube-apiserver's default `--service-account-issuer` and API audience.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the ServiceAccount signing key {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("writing the ServiceAccount signing key {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the ServiceAccount signing key {0} is not a P-256 PKCS#8 key")]
    Parse(String),
    #[error("generating a ServiceAccount signing key failed")]
    Generate,
}

pub struct TokenIssuer {
    key: EcdsaKeyPair,
    kid: String,
}

/// What a TokenRequest asks for.
pub struct TokenSpec<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub service_account_uid: &'a str,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    /// (kind, name, uid) of the Pod or Secret the token is bound to.
    pub bound: Option<(String, String, String)>,
}

impl TokenIssuer {
    /// The key in `path` (PKCS#8 DER), created there when missing; a fresh one without a path.
    pub fn load_or_create(path: Option<&Path>) -> Result<TokenIssuer, KeyError> {
        let show = |p: &Path| p.display().to_string();
        let der = match path {
            Some(p) if p.exists() => std::fs::read(p).map_err(|source| KeyError::Read { path: show(p), source })?,
            _ => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| KeyError::Generate)?;
                let der = doc.as_ref().to_vec();
                if let Some(p) = path {
                    std::fs::write(p, &der).map_err(|source| KeyError::Write { path: show(p), source })?;
                }
                der
            }
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| KeyError::Parse(path.map(show).unwrap_or_default()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.public_key().as_ref());
        let kid = B64.encode(&digest.as_ref()[..16]);
        Ok(TokenIssuer { key, kid })
    }

    /// A signed token and its expiry (unix seconds).
    pub fn issue(&self, spec: &TokenSpec<'_>) -> Result<(String, i64), String> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + spec.expiration_seconds;
        let mut k8s = json!({
            "namespace": spec.namespace,
            "serviceaccount": {"name": spec.service_account, "uid": spec.service_account_uid},
        });
        if let Some((kind, name, uid)) = &spec.bound {
            k8s[kind.to_lowercase()] = json!({"name": name, "uid": uid});
        }
        let claims = json!({
            "aud": spec.audiences, "exp": exp, "iat": now, "nbf": now, "iss": ISSUER,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": format!("system:serviceaccount:{}:{}", spec.namespace, spec.service_account),
            "kubernetes.io": k8s,
        });
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| "signing the token failed".to_string())?;
        Ok((format!("{signing_input}.{}", B64.encode(sig.as_ref())), exp))
    }

    /// The claims of a token this issuer signed, if the signature holds and it is current.
    fn claims(&self, token: &str) -> Result<Value, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("not a JWT".into());
        };
        let sig = B64.decode(s).map_err(|_| "bad signature encoding")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(format!("{h}.{c}").as_bytes(), &sig)
            .map_err(|_| "invalid signature")?;
        let claims: Value =
            serde_json::from_slice(&B64.decode(c).map_err(|_| "bad claims encoding")?).map_err(|_| "bad claims")?;
        let now = chrono::Utc::now().timestamp();
        if claims["iss"] != ISSUER {
            return Err("wrong issuer".into());
        }
        if claims["exp"].as_i64().is_none_or(|e| e <= now) {
            return Err("token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|n| n > now + 60) {
            return Err("token not valid yet".into());
        }
        let auds: Vec<&str> = match &claims["aud"] {
            Value::String(s) => vec![s.as_str()],
            v => v.as_array().into_iter().flatten().filter_map(Value::as_str).collect(),
        };
        if !auds.contains(&ISSUER) {
            return Err("token audiences do not include the API server".into());
        }
        Ok(claims)
    }

    /// The user a bearer token stands for: its signature, expiry and audience hold, and
    /// the ServiceAccount (and the Pod or Secret it is bound to) still exist with their uids.
    pub fn authenticate(&self, store: &Store, token: &str) -> Result<UserInfo, String> {
        let claims = self.claims(token)?;
        let k8s = &claims["kubernetes.io"];
        let ns = k8s["namespace"].as_str().unwrap_or("");
        let sa = k8s["serviceaccount"]["name"].as_str().unwrap_or("");
        let exists = |resource: &str, name: &str, uid: &str| {
            let key = Key {
                group: String::new(),
                resource: resource.into(),
                namespace: ns.into(),
                name: name.into(),
            };
            store
                .objects
                .get(&key)
                .is_some_and(|o| crate::meta::uid(o) == uid && !crate::meta::is_deleting(o))
        };
        let sa_uid = k8s["serviceaccount"]["uid"].as_str().unwrap_or("");
        if !exists("serviceaccounts", sa, sa_uid) {
            return Err(format!("service account {ns}/{sa} has been deleted"));
        }
        let mut extra = BTreeMap::new();
        for (kind, resource) in [("pod", "pods"), ("secret", "secrets")] {
            let bound = &k8s[kind];
            if bound.is_object() {
                let (name, uid) = (
                    bound["name"].as_str().unwrap_or(""),
                    bound["uid"].as_str().unwrap_or(""),
                );
                if !exists(resource, name, uid) {
                    return Err(format!("the {kind} {ns}/{name} the token is bound to is gone"));
                }
                if kind == "pod" {
                    extra.insert("authentication.kubernetes.io/pod-name".into(), vec![name.to_string()]);
                    extra.insert("authentication.kubernetes.io/pod-uid".into(), vec![uid.to_string()]);
                }
            }
        }
        if let Some(jti) = claims["jti"].as_str() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(UserInfo {
            name: format!("system:serviceaccount:{ns}:{sa}"),
            uid: sa_uid.to_string(),
            groups: super::service_account_groups(ns),
            extra,
        })
    }
}
