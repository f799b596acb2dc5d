//! `pgstep fingerprint`: the hash first, then the version whose reference matches, or the
//! object-level differences from the expected one.

use std::path::PathBuf;

use super::{fail, resolve};
use crate::bundle::{self, Bundle};
use crate::conn::ConnArgs;
use crate::{exit, fingerprint};

pub(super) fn fingerprint_command(
    conn: &ConnArgs,
    database: Option<String>,
    full: bool,
    bundle_dir: Option<PathBuf>,
) -> i32 {
    let bundle = match bundle_dir.as_deref().map(bundle::load).transpose() {
        Ok(b) => b,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    let server = match resolve(conn) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let settings = match &database {
        Some(db) => server.with_dbname(db),
        None => server,
    };
    let db = settings.dbname().to_owned();
    let mut client = match settings.connect(None) {
        Ok(c) => c,
        Err(e) => return fail(exit::REFUSED, &e.to_string()),
    };
    let schemas = match &bundle {
        Some(b) => b.schemas.clone(),
        None => match fingerprint::user_schemas(&mut client) {
            Ok(s) => s,
            Err(e) => return fail(exit::FAILED, &crate::db::describe(&e)),
        },
    };
    let fp = match fingerprint::compute(&mut client, &schemas) {
        Ok(fp) => fp,
        Err(e) => {
            return fail(
                exit::FAILED,
                &format!(
                    "failed to fingerprint \"{db}\": {}",
                    crate::db::describe(&e)
                ),
            );
        }
    };
    outln!("{}", fp.display_hash());
    let code = match &bundle {
        Some(b) => compare_with_bundle(&mut client, b, &fp, &db),
        None => exit::SUCCESS,
    };
    if full {
        out!("{}", fp.text);
    }
    code
}

/// Names the version whose reference matches, or shows the differences from the expected one.
fn compare_with_bundle(
    client: &mut postgres::Client,
    bundle: &Bundle,
    fp: &fingerprint::Fingerprint,
    db: &str,
) -> i32 {
    let matching = bundle.versions_with_hash(&fp.hash);
    if let Some(v) = matching.last() {
        outln!(
            "matches {} version {v} ({} objects in schemas {})",
            bundle.name,
            fp.lines,
            bundle.schemas.join(", ")
        );
        return exit::SUCCESS;
    }
    let marker = crate::db::version::read_version(client, &bundle.version_query, db).ok();
    let expected = marker.and_then(|v| bundle.reference_for(v)).or_else(|| {
        bundle
            .fingerprints
            .iter()
            .min_by_key(|(_, r)| fingerprint::diff(&r.text, &fp.text).len())
            .map(|(v, r)| (*v, r))
    });
    match expected {
        Some((v, r)) => {
            let d = fingerprint::diff(&r.text, &fp.text);
            let why = if marker.is_some() {
                format!(
                    "the version marker says {}",
                    marker.map_or_else(String::new, |m| m.to_string())
                )
            } else {
                "the closest reference".to_owned()
            };
            outln!(
                "matches no reference of {}; against version {v} ({why}), {} object(s) differ:",
                bundle.name,
                d.len()
            );
            out!("{d}");
        }
        None => outln!("matches no reference of {}", bundle.name),
    }
    exit::REFUSED
}
