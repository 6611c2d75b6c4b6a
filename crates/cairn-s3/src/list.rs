//! Listing a bucket: prefixes, delimiters, pages. ListObjectsV2 and V1 both come down to
//! [`list`], which walks the bucket's keys in order ([`crate::walk`]) from the first one that
//! can match, rolls keys up into common prefixes without reading below a directory that
//! rolls up whole, and stops after `max` results.

use crate::walk::{Item, Walker};
use cairn_client::{Backend, Result};

/// Most results in one page, as in S3.
pub const MAX_KEYS: usize = 1000;

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects ([`Item::Object`]; and [`Item::Deleted`] in walks with graves), in key order.
    pub objects: Vec<Item>,
    /// Common prefixes.
    pub prefixes: Vec<String>,
    /// More results follow.
    pub truncated: bool,
    /// The last key or common prefix of this page (where the next page starts after).
    pub last: Option<String>,
}

/// What to list.
#[derive(Debug, Default, Clone)]
pub struct Request {
    /// Only keys that start with this.
    pub prefix: String,
    /// Roll keys up at the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Only keys after this (a common prefix here skips every key below it).
    pub after: Option<String>,
    /// Most results.
    pub max: usize,
    /// Deleted keys that keep a history count too (version listings).
    pub with_graves: bool,
}

/// The common prefix `key` rolls up into, if any.
fn rolled<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = &key[prefix.len()..];
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

/// One page of the bucket whose directory is `root`.
pub async fn list<B: Backend>(b: &B, root: u64, req: &Request) -> Result<Listing> {
    let mut out = Listing::default();
    let delimiter = req.delimiter.as_deref();
    // After a common prefix, nothing below it comes again.
    let skip_below = req.after.as_deref().filter(|a| delimiter.is_some_and(|d| !d.is_empty() && a.ends_with(d)));
    let mut walker = match req.after.as_deref() {
        Some(a) if a >= req.prefix.as_str() => Walker::seek(b, root, a, false, req.with_graves).await?,
        _ if req.prefix.is_empty() => Walker::new(b, root, req.with_graves),
        _ => Walker::seek(b, root, &req.prefix, true, req.with_graves).await?,
    };
    let mut count = 0;
    while let Some(item) = walker.next().await? {
        let key = item.key().to_string();
        let is_dir = matches!(item, Item::Dir { .. });
        if !key.starts_with(&req.prefix) {
            if is_dir && req.prefix.starts_with(&key) {
                walker.enter();
                continue;
            }
            if key.as_str() > req.prefix.as_str() {
                break;
            }
            continue;
        }
        if let Some(skip) = skip_below {
            if key.starts_with(skip) {
                continue;
            }
        }
        if let Some(a) = req.after.as_deref() {
            if key.as_str() <= a && !(is_dir && a.starts_with(&key)) {
                continue;
            }
            if is_dir && a.starts_with(&key) {
                walker.enter();
                continue;
            }
        }
        let rolled = rolled(&key, &req.prefix, delimiter).map(str::to_string);
        let result = match (rolled, item) {
            (Some(cp), item) => {
                let dir = matches!(item, Item::Dir { .. });
                if dir && cp.len() > key.len() {
                    // The common prefix ends below this directory: its keys decide.
                    walker.enter();
                    continue;
                }
                if out.prefixes.last() == Some(&cp) {
                    continue;
                }
                Err(cp)
            }
            (None, item @ (Item::Object { .. } | Item::Deleted { .. })) => Ok(item),
            (None, Item::Dir { .. }) => {
                walker.enter();
                continue;
            }
        };
        if count == req.max {
            out.truncated = true;
            break;
        }
        count += 1;
        match result {
            Err(cp) => {
                out.last = Some(cp.clone());
                out.prefixes.push(cp);
            }
            Ok(item) => {
                out.last = Some(item.key().to_string());
                out.objects.push(item);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::rolled;

    #[test]
    fn keys_roll_up_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(rolled("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(rolled("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(rolled("a/b", "a/", Some("/")), None);
        assert_eq!(rolled("x-1-2", "x", Some("-")), Some("x-"));
        assert_eq!(rolled("a/b", "", None), None);
        assert_eq!(rolled("a/b", "", Some("")), None);
    }
}
