//! Access keys in the metadata: by id (how a request's credentials are looked up) and by
//! name (how operators manage them). Secrets arrive sealed; this crate never sees them.

use crate::tables::fail;
use crate::Result;
use cairn_core::access::AccessKey;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Reply};
use cairn_core::ErrorCode;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

/// key id -> encoded [`AccessKey`].
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// key name -> key id (rebuilt from `keys` when a snapshot is installed).
pub(crate) const KEY_NAMES: TableDefinition<&str, &str> = TableDefinition::new("key_names");

/// Adds a key; its name and id must be new.
pub(crate) fn put_key(txn: &WriteTransaction, key: &AccessKey) -> Result<ApplyResult> {
    if let Err(e) = key.validate() {
        return Ok(Err(e));
    }
    let mut names = txn.open_table(KEY_NAMES)?;
    let mut keys = txn.open_table(KEYS)?;
    if names.get(key.name.as_str())?.is_some() || keys.get(key.id.as_str())?.is_some() {
        return Ok(fail(ErrorCode::Exists, format!("a key named {:?} exists", key.name)));
    }
    names.insert(key.name.as_str(), key.id.as_str())?;
    keys.insert(key.id.as_str(), encode(key).as_slice())?;
    Ok(Ok(Reply::Done))
}

/// Removes the key named `name`.
pub(crate) fn delete_key(txn: &WriteTransaction, name: &str) -> Result<ApplyResult> {
    let mut names = txn.open_table(KEY_NAMES)?;
    let Some(id) = names.remove(name)?.map(|v| v.value().to_string()) else {
        let name: String = name.chars().take(64).collect();
        return Ok(fail(ErrorCode::NotFound, format!("no key named {name:?}")));
    };
    txn.open_table(KEYS)?.remove(id.as_str())?;
    Ok(Ok(Reply::Done))
}

/// The key with id `id`, if there is one.
pub fn access_key(txn: &ReadTransaction, id: &str) -> Result<Option<AccessKey>> {
    let keys = txn.open_table(KEYS)?;
    let found = keys.get(id)?;
    Ok(match found {
        Some(v) => Some(decode(v.value(), "access key")?),
        None => None,
    })
}

/// Every key, by name.
pub fn access_keys(txn: &ReadTransaction) -> Result<Vec<AccessKey>> {
    let keys = txn.open_table(KEYS)?;
    let mut out = Vec::new();
    for r in keys.iter()? {
        out.push(decode::<AccessKey>(r?.1.value(), "access key")?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
