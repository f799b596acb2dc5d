//! The raw `bundle.toml`, exactly as written, with the position of every value.
//!
//! Nothing here is validated beyond TOML syntax and key names (unknown keys are refused so a typo
//! is never silently ignored); `validate.rs` turns this into a [`super::Bundle`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub application: Spanned<RawApplication>,
    pub database: Spanned<RawDatabase>,
    pub version: Spanned<RawVersionQuery>,
    pub baseline: Spanned<RawBaseline>,
    #[serde(default)]
    pub step: Vec<Spanned<RawStep>>,
    #[serde(default)]
    pub fixup: Vec<Spanned<RawFixup>>,
    #[serde(default)]
    pub fingerprints: BTreeMap<String, Text>,
    #[serde(default)]
    pub precheck: Vec<Spanned<RawPrecheck>>,
    #[serde(default)]
    pub plausibility: Vec<Spanned<RawPlausibility>>,
    pub banner: Option<Spanned<RawBanner>>,
    pub notify: Option<Spanned<RawNotify>>,
    #[serde(default)]
    pub placeholders: BTreeMap<String, Spanned<RawPlaceholder>>,
    #[serde(default)]
    pub session: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub name: Text,
    pub description: Option<Text>,
    #[serde(default)]
    pub pre_release: bool,
    pub min_server_version: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub naming: Text,
    pub name: Text,
    pub aside: Option<Text>,
    pub schemas: Spanned<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersionQuery {
    pub query: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    pub version: Text,
    pub scripts: Spanned<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub from: Text,
    pub to: Text,
    pub scripts: Spanned<Vec<Text>>,
    #[serde(default)]
    pub single_transaction: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFixup {
    pub version: Text,
    pub scripts: Spanned<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrecheck {
    pub name: Text,
    pub script: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlausibility {
    pub name: Text,
    pub old: Text,
    pub new: Text,
    pub from: Option<Text>,
    pub to: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBanner {
    pub get: Text,
    pub set: Text,
    pub clear: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub channels: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlaceholder {
    pub kind: Text,
    pub value: Text,
}
