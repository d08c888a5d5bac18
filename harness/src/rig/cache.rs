//! Fixture files read once per run: a suite of thousands of scenarios uses the same handful of
//! profiles, card folders and key files. Keyed by path and modification time, so an edited file
//! is read again.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

type Key = (&'static str, PathBuf, Option<SystemTime>, String);

fn cache() -> &'static Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>> {
    static C: OnceLock<Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The value for (`kind`, `path`, `extra`), loaded with `load` the first time.
pub fn get<T: Send + Sync + 'static>(
    kind: &'static str,
    path: &Path,
    extra: &str,
    load: impl FnOnce() -> Result<T, String>,
) -> Result<Arc<T>, String> {
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let key = (kind, path.to_path_buf(), mtime, extra.to_string());
    if let Ok(c) = cache().lock()
        && let Some(v) = c.get(&key)
        && let Ok(v) = Arc::clone(v).downcast::<T>()
    {
        return Ok(v);
    }
    let v = Arc::new(load()?);
    if let Ok(mut c) = cache().lock() {
        c.insert(key, v.clone());
    }
    Ok(v)
}
